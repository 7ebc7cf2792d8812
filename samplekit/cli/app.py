"""The ``samplekit`` click group: its commands come from the ``samplekit_register_commands`` hook (the
core's like any plugin's), loaded on first use; errors a user can cause print as one line, no traceback.

The commands are collected from a plugin manager holding the core command plugin
(``samplekit.cli.core``) and the third-party entry-point plugins; the built-in solver packages add no
commands, so ``samplekit --help`` imports neither torch nor them.
"""

from __future__ import annotations

import click

from samplekit.errors import SamplekitError

CORE_COMMANDS = "samplekit.cli.core"
# click >= 8.2: a command called without the arguments it needs shows its help (not an error line)
HELP_ERRORS = tuple(e for e in (getattr(click.exceptions, "NoArgsIsHelpError", None),) if e is not None)


class CommandError(click.ClickException):
    """An error a user can cause, shown as one line ``error: <message>`` on stderr with its exit status:
    2 for bad input (click's usage errors, ``SamplekitError``), 1 for a run that went wrong (e.g. failed
    benchmark cells, a non-finite result)."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


class RunFailedError(CommandError):
    """A run that went wrong (exit status 1), in the same one-line style."""

    exit_code = 1


def command_error(message: str, exit_code: int) -> CommandError:
    """The one-line error with exit status 1 (a run went wrong) or 2 (bad input)."""
    return RunFailedError(message) if exit_code == 1 else CommandError(message)


def from_click(exc: click.ClickException) -> CommandError:
    """click's own errors in the one style: a usage error (bad option, bad value) as ``error: ...`` naming
    the --help to read, exit status 2; any other ClickException with its own status."""
    if isinstance(exc, CommandError):
        return exc
    message = " ".join(exc.format_message().split())
    if isinstance(exc, click.UsageError):
        ctx = exc.ctx
        where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        return CommandError(message + where)
    return command_error(message, exc.exit_code)


def as_command_error(exc: BaseException) -> CommandError | None:
    """The one-line error for an exception a user can cause; None for anything else (a bug keeps its traceback).

    SamplekitError is the rule; click's own errors, OS errors about a path, and plain ValueError/TypeError
    raised by code not yet on the hierarchy, are shown too, named by their type."""
    if isinstance(exc, click.ClickException):
        return from_click(exc)
    if isinstance(exc, SamplekitError):
        return command_error(str(exc), exc.exit_code)
    if isinstance(exc, (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)):
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        return CommandError(f"{exc.strerror or exc}{where}" if exc.strerror else str(exc))
    if isinstance(exc, (ValueError, TypeError)):
        return CommandError(str(exc))
    return None


class SamplekitCommand(click.Command):
    """A command whose errors a user can cause (click's usage errors included) show as one ``error: ...``
    line, also when invoked on its own (outside the ``samplekit`` group: a plugin's or a test's CliRunner);
    the group inherits the same handling (its MRO puts click.Group between this and click.Command)."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.ClickException as exc:  # `samplekit --bad-option`, a missing command
            if isinstance(exc, HELP_ERRORS):  # `samplekit` alone prints its help
                raise
            raise from_click(exc) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except Exception as exc:
            error = as_command_error(exc)
            if error is None:
                raise
            raise error from None


class SamplekitGroup(SamplekitCommand, click.Group):
    """A click group whose commands are registered through the plugin hook on first use, refusing a
    command name that another plugin already added, and turning user errors into messages."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.command_plugins: dict[str, str] = {}
        self.command_failures: list = []
        self._loaded = False
        self._adding_for: str | None = None

    # --- loading -------------------------------------------------------------------------------
    def load_commands(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        impls, failures = command_hookimpls()
        self.command_failures.extend(failures)
        for plugin, function in impls:
            before = dict(self.commands)
            self._adding_for = plugin
            try:
                function(cli=self)
            except Exception as exc:  # noqa: BLE001  (a broken plugin loses its commands, the rest keeps working)
                self.commands = before
                self.command_plugins = {k: v for k, v in self.command_plugins.items() if k in before}
                from samplekit.registry import PluginFailure

                self.command_failures.append(PluginFailure(plugin, f"{type(exc).__name__}: {exc}"))
            finally:
                self._adding_for = None

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        name = name or cmd.name or ""
        owner = self._adding_for or "samplekit"
        if name in self.commands and self.command_plugins.get(name) != owner:
            from samplekit.errors import DuplicateComponentError

            raise DuplicateComponentError(
                f"command {name!r} is added by plugin {self.command_plugins.get(name)!r} "
                f"and by plugin {owner!r}; rename one"
            )
        super().add_command(cmd, name)
        self.command_plugins[name] = owner

    def list_commands(self, ctx: click.Context) -> list[str]:
        self.load_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self.load_commands()
        return super().get_command(ctx, cmd_name)


def command_hookimpls() -> tuple[list, list]:
    """[(plugin name, hook function)] of ``samplekit_register_commands``, the core's first, and the plugins
    that failed to load."""
    from samplekit.plugins import make_plugin_manager

    pm, failures = make_plugin_manager(builtins=(CORE_COMMANDS,), entry_points=True)
    impls = sorted(pm.hook.samplekit_register_commands.get_hookimpls(), key=lambda i: i.plugin_name != CORE_COMMANDS)
    return [(impl.plugin_name, impl.function) for impl in impls], failures


@click.group(cls=SamplekitGroup)
@click.version_option(package_name="samplekit")
def cli() -> None:
    """samplekit: samplers and solvers for score-based diffusion models."""


def main(argv: list[str] | None = None) -> None:
    """The console script (``samplekit``, ``python -m samplekit``)."""
    cli.main(args=argv, prog_name="samplekit")
