"""The ``samplekit`` command line: list, sample (and the commands plugins add)."""

from __future__ import annotations

import json
import sys

import click

from samplekit.conditioning_cli import conditioning_options
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
@click.option("--model", "model_source", metavar="PATH|NAME",
              help="sample a network instead of a target: a path read by a model loader (see --loader), or a "
                   "shipped model's name (e.g. digits_unet, ring2d_mlp)")
@click.option("--loader", help="the model loader for --model (samplekit list model_loader); guessed if omitted")
@click.option("--sde", "sde_name", default="vp", show_default=True, help="a registered SDE (samplekit list sde)")
@click.option("--solver", default="euler_maruyama", show_default=True)
@click.option("--nfe", default=None, type=int, help="network evaluations [default: 100; for an adaptive solver a cap of 10000]")
@click.option("-n", "--num-samples", default=1000, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help="a solver option, value parsed as JSON (repeatable), e.g. --option eta=0.5")
@click.option("--out", default="samples.npz", show_default=True, type=click.Path(dir_okay=False))
@click.option("--grid", type=click.Path(dir_okay=False),
              help="PNG grid of image samples (at most 100); default: --out with .png, for image-shaped models")
@conditioning_options
def sample_command(target, model_source, loader, sde_name, solver, nfe, num_samples, seed, options, out,
                   grid, **conditioning) -> None:
    """Sample a target (or a trained network, --model) with a solver; write the samples to an .npz file
    and, for images, a PNG grid.  --class/--guidance and --mask/--observation/--inpaint condition the
    samples (see samplekit.conditioning_cli)."""
    import numpy as np

    from samplekit.conditioning_cli import prepare
    from samplekit.sampling import sample

    model, label = _sample_model(target, model_source, loader, sde_name)
    cond = prepare(model, model_source or target, solver, parse_options(options), num_samples, seed, **conditioning)
    res = sample(cond.model, solver=cond.solver, nfe=nfe, num_samples=num_samples, seed=seed, **cond.solver_options)
    np.savez(out, samples=res.samples.cpu().numpy(), nfe=res.nfe, solver=res.solver, target=label,
             sde=model.sde.name, **cond.extras)
    click.echo(f"wrote {num_samples} samples of {label} ({model.sde.name}, {res.solver}, {res.nfe} NFE, "
               f"{res.seconds:.2f} s) to {out}")
    from samplekit.io.images import is_image_shape, save_image_grid

    if grid or is_image_shape(model.shape):
        if not is_image_shape(model.shape):
            raise click.BadParameter(f"samples of shape {model.shape} are not images (C, H, W)", param_hint="--grid")
        from pathlib import Path

        path = save_image_grid(grid or Path(out).with_suffix(".png"), res.samples[:100])
        click.echo(f"wrote a grid of {min(num_samples, 100)} images to {path}")


def _sample_model(target: str, model_source: str | None, loader: str | None, sde_name: str):
    """(ScoreModel, label) of --target, or of --model (a path through a loader, or a shipped model's name)."""
    from pathlib import Path

    from samplekit.api import get_sde, get_target

    if model_source is None:
        return get_target(target).model(get_sde(sde_name)), target
    if not Path(model_source).exists() and loader is None:
        shipped = get_registry().create("target", model_source) if model_source in {
            c.name for c in get_registry().available("target")} else None
        if shipped is None or getattr(shipped, "fixed_sde", None) is None:
            raise click.BadParameter(f"{model_source!r} is neither a path nor a shipped model's name",
                                     param_hint="--model")
        return shipped.model(shipped.fixed_sde), model_source
    from samplekit.loading import load_model

    return load_model(model_source, loader=loader), Path(model_source).name


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

from samplekit.train_cli import train_command  # noqa: E402

cli.add_command(train_command)


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
