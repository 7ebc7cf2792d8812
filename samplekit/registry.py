"""Named components per kind, each remembered with the plugin that gave it."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# the error classes live in samplekit.errors (one hierarchy); re-exported here for existing imports
from samplekit.errors import (  # noqa: F401
    DuplicateComponentError,
    InvalidArgumentError,
    PluginError,
    SamplekitError,
    UnknownComponentError,
)

KINDS = ("solver", "sde", "schedule", "trace_estimator", "model_loader", "metric", "target", "guidance", "fitter")


@dataclass(frozen=True)
class ComponentInfo:
    """One registered component: what it is, who gave it, how to build it."""

    kind: str
    name: str
    plugin: str
    factory: Callable[..., Any] = field(repr=False, compare=False)
    summary: str = ""
    info: dict = field(default_factory=dict, compare=False)

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "name": self.name,
            "plugin": self.plugin,
            "summary": self.summary,
            **{
                k: v
                for k, v in self.info.items()
                if isinstance(v, (str, int, float, bool, type(None), list, tuple, dict))
            },
        }


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be imported or whose hook raised."""

    plugin: str
    error: str


def _summary_of(factory: Callable) -> str:
    doc = getattr(factory, "__doc__", None) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


class Registry:
    """Components by kind and name; duplicates are errors, unknown names list close matches."""

    def __init__(self) -> None:
        self._components: dict[str, dict[str, ComponentInfo]] = {kind: {} for kind in KINDS}
        self._aliases: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}
        self.failures: list[PluginFailure] = []

    def add(self, kind: str, name: str, factory: Callable, plugin: str, summary: str | None = None, **info) -> None:
        if kind not in self._components:
            raise InvalidArgumentError(f"kind={kind!r} is not a component kind; use one of {', '.join(KINDS)}")
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {plugin!r} registered a {kind} with name={name!r}; names are non-empty strings")
        aliases = tuple(a for a in info.get("aliases", ()) if a != name)
        for taken in (name, *aliases):
            holder = self._holder(kind, taken)
            if holder is not None:
                raise DuplicateComponentError(
                    f"{kind} name {taken!r} is registered twice: by plugin {holder.plugin!r} ({holder.name}) and by "
                    f"plugin {plugin!r} ({name}); plugin {plugin!r} must rename its {kind} (or be blocked: "
                    f"SAMPLEKIT_DISABLE_PLUGINS={plugin})"
                )
        self._components[kind][name] = ComponentInfo(
            kind, name, plugin, factory, summary if summary is not None else _summary_of(factory), info
        )
        self._aliases[kind].update(dict.fromkeys(aliases, name))

    def _holder(self, kind: str, name: str) -> ComponentInfo | None:
        """The component that has ``name`` as its name or one of its aliases."""
        canonical = self._aliases[kind].get(name, name)
        return self._components[kind].get(canonical)

    def scoped(self, kind: str, plugin: str) -> Callable[..., None]:
        """The register callable handed to one plugin's hook: ``register(SolverClass)`` for solvers
        (name, aliases, capabilities and options read from the class), ``register(name, factory, **info)``
        for every other kind."""
        if kind == "solver":

            def register_solver(cls, *extra, **info) -> None:
                describe = getattr(cls, "describe", None)
                if extra or info or not (isinstance(cls, type) and callable(describe)):
                    raise TypeError(
                        f"plugin {plugin!r} called register({cls!r}); solvers are registered as "
                        "register(SolverClass), a samplekit.Solver subclass that declares its name"
                    )
                from samplekit.solver import check_contract  # the solver module imports the options' module

                check_contract(cls)
                solver_class: Any = cls  # a Solver subclass (checked above); its name is a class attribute
                self.add(kind, solver_class.name, cls, plugin, **describe())

            register_solver.__doc__ = f"Register a Solver subclass on behalf of plugin {plugin!r}."
            return register_solver

        def register(name: str, factory: Callable, **info) -> None:
            self.add(kind, name, factory, plugin, **info)

        register.__doc__ = f"Register a {kind} on behalf of plugin {plugin!r}."
        return register

    def load_plugin(self, plugin: str, hooks: list[tuple[str, Callable]]) -> bool:
        """Run one plugin's registration hooks ``[(kind, hook function)]`` all or nothing: if one raises (a
        duplicate name, a bug in the plugin), every registration of that plugin is dropped, the plugin is
        recorded in ``failures`` with its error, and the registry is as before.  True if it loaded."""
        snapshot = ({k: dict(v) for k, v in self._components.items()}, {k: dict(v) for k, v in self._aliases.items()})
        try:
            for kind, function in hooks:
                function(register=self.scoped(kind, plugin))
        except Exception as exc:  # noqa: BLE001  (any fault of a plugin drops that plugin only)
            self._components, self._aliases = snapshot
            self.failures.append(
                PluginFailure(plugin, f"{type(exc).__name__}: {exc}; none of its components were loaded")
            )
            return False
        return True

    def get(self, kind: str, name: str) -> ComponentInfo:
        if kind not in self._components:
            raise InvalidArgumentError(f"kind={kind!r} is not a component kind; use one of {', '.join(KINDS)}")
        try:
            found = self._holder(kind, name)
        except TypeError:  # an unhashable name
            found = None
        if found is not None:
            return found
        names = sorted(self._components[kind])
        close = difflib.get_close_matches(str(name), names, n=4, cutoff=0.5)
        hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
        failed = [f.plugin for f in self.failures]
        note = f" (plugins that failed to load: {', '.join(failed)}; see `samplekit list`)" if failed else ""
        raise UnknownComponentError(f"unknown {kind} {name!r}; {hint}available: {', '.join(names) or 'none'}{note}")

    def create(self, kind: str, name: str, /, **options) -> Any:
        """Build a component; an option its factory does not take is refused, listing those it takes."""
        info = self.get(kind, name)
        _check_options(info.factory, f"{kind} {info.name!r}", options)
        return info.factory(**options)

    def available(self, kind: str | None = None) -> list[ComponentInfo]:
        if kind is not None and kind not in self._components:
            raise InvalidArgumentError(f"kind={kind!r} is not a component kind; use one of {', '.join(KINDS)}")
        kinds = [kind] if kind else list(KINDS)
        return [self._components[k][n] for k in kinds for n in sorted(self._components[k])]


def _check_options(factory: Callable, what: str, options: dict) -> None:
    from samplekit.options import check_arguments  # the options module imports the errors this one re-exports

    check_arguments(factory, what, options, phrases=("takes no option", "it takes"))
