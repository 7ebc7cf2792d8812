"""The ``samplekit`` command line: list, sample (and the commands plugins add)."""

from __future__ import annotations

import json
import sys

import click

from samplekit.plugins import get_plugin_manager, get_registry
from samplekit.registry import KINDS, SamplekitError


@click.group()
@click.version_option(package_name="samplekit")
def cli() -> None:
    """samplekit: samplers and solvers for score-based diffusion models."""


@cli.command("list")
@click.argument("kind", required=False, type=click.Choice(KINDS))
@click.option("--json", "as_json", is_flag=True, help="one JSON object per component: kind, name, plugin, summary, ...")
def list_components(kind: str | None, as_json: bool) -> None:
    """List registered components (of one KIND) with the plugin that gave each."""
    registry = get_registry()
    items = registry.available(kind)
    if as_json:
        payload = {"components": [c.as_dict() for c in items],
                   "failed_plugins": [{"plugin": f.plugin, "error": f.error} for f in registry.failures]}
        click.echo(json.dumps(payload, indent=1))
        return
    width = max((len(c.name) for c in items), default=4)
    pwidth = max((len(c.plugin) for c in items), default=6)
    current = None
    for c in items:
        if c.kind != current:
            current = c.kind
            click.echo(click.style(f"{c.kind}s", bold=True))
        click.echo(f"  {c.name:<{width}}  {c.plugin:<{pwidth}}  {c.summary}")
    for f in registry.failures:
        click.echo(click.style(f"plugin {f.plugin} failed to load: {f.error}", fg="yellow"), err=True)


@cli.command("sample")
@click.option("--target", default="ring2d", show_default=True, help="a registered target (samplekit list target)")
@click.option("--sde", "sde_name", default="vp", show_default=True, help="a registered SDE (samplekit list sde)")
@click.option("--solver", default="euler_maruyama", show_default=True)
@click.option("--nfe", default=100, show_default=True, type=int)
@click.option("-n", "--num-samples", default=1000, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help="a solver option, value parsed as JSON (repeatable), e.g. --option eta=0.5")
@click.option("--out", default="samples.npz", show_default=True, type=click.Path(dir_okay=False))
def sample_command(target, sde_name, solver, nfe, num_samples, seed, options, out) -> None:
    """Sample a target with a solver and write the samples to an .npz file."""
    import numpy as np

    from samplekit.api import get_sde, get_target
    from samplekit.sampling import sample

    target_obj = get_target(target)
    model = target_obj.model(get_sde(sde_name))
    res = sample(model, solver=solver, nfe=nfe, num_samples=num_samples, seed=seed, **parse_options(options))
    np.savez(out, samples=res.samples.cpu().numpy(), nfe=res.nfe, solver=res.solver, target=target, sde=sde_name)
    click.echo(f"wrote {num_samples} samples of {target} ({sde_name}, {res.solver}, {res.nfe} NFE, "
               f"{res.seconds:.2f} s) to {out}")


def parse_options(pairs) -> dict:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--option")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


from samplekit.bench.command import bench_command  # noqa: E402  (the engine itself is imported lazily)

cli.add_command(bench_command)

from samplekit.likelihood_cli import likelihood_command  # noqa: E402

cli.add_command(likelihood_command)


def main() -> None:
    get_plugin_manager().hook.samplekit_register_commands(cli=cli)
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (SamplekitError, ValueError, TypeError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
