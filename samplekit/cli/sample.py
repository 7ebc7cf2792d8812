"""``samplekit sample``: draw samples of a target or a network and write them to an .npz (and a PNG grid
for images).

    samplekit sample --target ring2d --solver dpmpp_2m --nfe 20 --out ring.npz
    samplekit sample --model net.safetensors --loader torch --parametrization eps --sde vp --shape 2
    samplekit sample --model DIR --class 3 --guidance 2 --cond inputs.npz --init x.npz --strength 0.6

Outputs are checked before any work (directory exists, suffix .npz, no overwrite without ``--force``)
and the path actually written is reported.
"""

from __future__ import annotations

import click

from samplekit.cli.conditioning import conditioning_options
from samplekit.cli.model_choice import ModelFlags, model_options
from samplekit.errors import InvalidArgumentError


@click.command("sample")
@click.option("--target", default="ring2d", show_default=True, help="a registered target (samplekit list target)")
@model_options
@click.option("--solver", default="euler_maruyama", show_default=True)
@click.option(
    "--nfe", default=None, type=int, help="network evaluations [default: 100; for an adaptive solver a cap of 10000]"
)
@click.option("-n", "--num-samples", default=1000, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**63 - 1))
@click.option(
    "--per-sample-seeds",
    is_flag=True,
    help="sample i gets its own seed SEED+i: it is the same whatever -n and --batch-size",
)
@click.option("--batch-size", type=click.IntRange(1), help="sample this many at a time (bounds memory)")
@click.option(
    "--option",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="a solver option, parsed against the solver's declared type (repeatable), e.g. --option eta=0.5",
)
@click.option(
    "--ts",
    "ts_path",
    type=click.Path(dir_okay=False),
    help=".npy/.npz of a decreasing time grid, used as given (the solver's schedule is not used)",
)
@click.option(
    "--init",
    "init_path",
    type=click.Path(dir_okay=False),
    help="img2img/SDEdit: .npy/.npz of start samples (one, or one per sample), noised to --strength",
)
@click.option(
    "--strength",
    type=click.FloatRange(0, 1, min_open=True),
    help="with --init: how far to noise it, t_start = strength * T (1 = from pure noise)",
)
@click.option(
    "--out", default="samples.npz", show_default=True, help="an .npz file, or a directory (written as DIR/samples.npz)"
)
@click.option("--force", is_flag=True, help="overwrite existing output files")
@click.option("--fitted", "fitted_path", help="a fitted sampler file (samplekit fit-solver): its solver, grid and nfe")
@click.option(
    "--grid", help="PNG grid of image samples (at most 100); default: --out with .png, for image-shaped models"
)
@conditioning_options
def sample_command(
    target,
    solver,
    nfe,
    num_samples,
    seed,
    per_sample_seeds,
    batch_size,
    options,
    ts_path,
    init_path,
    strength,
    out,
    force,
    grid,
    fitted_path,
    **conditioning,
) -> None:
    """Sample a target (or a network, --model) with a solver; write the samples to an .npz file and, for
    images, a PNG grid.  --class/--guidance, --cond, --mask/--observation/--inpaint condition the samples."""
    from samplekit.cli.outputs import names_directory, output_file, write_npz

    into_directory = names_directory(out)  # resolved once: --out DIR/ writes DIR/samples.npz, never elsewhere
    out_path = output_file(out, force, "--out", ".npz", default_name="samples.npz")
    grid_path = output_file(grid, force, "--grid", ".png") if grid else None
    if (init_path is None) != (strength is None):
        raise click.BadParameter(
            "--init and --strength go together: give both (e.g. --init x.npz --strength 0.6)",
            param_hint="--init" if init_path is None else "--strength",
        )
    flags = ModelFlags.from_options(conditioning)
    if flags.source is not None and click.get_current_context().get_parameter_source("target") is (
        click.core.ParameterSource.COMMANDLINE
    ):
        raise InvalidArgumentError(
            f"--target {target} and --model {flags.source} were both given; the samples come from one of them: "
            "drop --target (with --model) or --model"
        )

    from samplekit.api import solver_options_from_text
    from samplekit.cli.conditioning import prepare
    from samplekit.cli.runs import SamplingRun

    chosen = flags.build(target)
    model, label = chosen.model, chosen.label
    images = _is_image(model.shape) or getattr(model, "decoder", None) is not None  # a latent model decodes to images
    if grid_path is None and images:
        out_path.parent.mkdir(exist_ok=True)  # --out DIR (not made yet) holds the grid beside samples.npz
        grid_path = output_file(out_path.with_suffix(".png"), force, "--grid", ".png")
    elif grid_path is not None and not images:
        raise click.BadParameter(f"samples of shape {tuple(model.shape)} are not images (C, H, W)", param_hint="--grid")
    cond = prepare(
        model,
        flags.source or target,
        solver,
        solver_options_from_text(solver, options),
        num_samples,
        seed,
        **conditioning,
    )
    cond.extras.update(chosen.extras)
    if fitted_path is not None:
        from samplekit.cli.fit_solver import fitted_for_sample

        cond.solver = fitted_for_sample(fitted_path, solver, options, ts_path)
    run = SamplingRun(cond, nfe, num_samples, seed, per_sample_seeds, batch_size)
    run.read_inputs(ts_path, init_path, strength)
    if into_directory:  # --out DIR: chunks on disk, resumable, sharded under torchrun
        from samplekit.chunks import cli_sample_to_dir

        return cli_sample_to_dir(run, out_path, label, model.sde.name, force, grid_path, {**cond.extras, **run.extras})
    res = run.sample()
    written = write_npz(
        out_path,
        force,
        samples=res.samples.cpu().numpy(),
        nfe=res.nfe,
        solver=res.solver,
        target=label,
        sde=model.sde.name,
        seed=run.seed_record(),
        **cond.extras,
        **run.extras,
    )
    click.echo(
        f"wrote {num_samples} samples of {label} ({model.sde.name}, {res.solver}, {res.nfe} NFE, "
        f"{res.seconds:.2f} s) to {written}"
    )
    if grid_path is not None:
        from samplekit.io.images import save_image_grid

        decoded = getattr(res, "decoded", None)
        path = save_image_grid(grid_path, (decoded if decoded is not None else res.samples)[:100])
        click.echo(f"wrote a grid of {min(num_samples, 100)} images to {path}")


def _is_image(shape) -> bool:
    from samplekit.io.images import is_image_shape

    return is_image_shape(tuple(shape))
