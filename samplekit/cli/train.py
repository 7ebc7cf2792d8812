"""``samplekit train``: fit a small MLP score network by score matching and save it in the native format.

    samplekit train --data ring2d --out my_model            # samples of a registered target
    samplekit train --data points.npz --loss ssm --steps 4000 --checkpoint ckpt.safetensors --resume
    samplekit sample --model my_model --solver euler_maruyama

The output directory (``model.safetensors`` + ``samplekit.json``) loads with ``sk.load_model(dir)``.
"""

from __future__ import annotations

import time
from pathlib import Path

import click


def training_data(data: str, num_data: int, seed: int):
    """An .npz (array 'samples', or its only array) / .npy file of samples, one per row, or ``num_data``
    samples of a registered target.  Errors name --data."""
    import torch

    from samplekit.arrays import ArrayChoiceError, read_array
    from samplekit.errors import InputFileError, UnknownComponentError

    if Path(data).suffix in (".npz", ".npy") or Path(data).exists():
        try:
            array = read_array(data, "samples", what="--data")
        except ArrayChoiceError as exc:
            raise InputFileError(
                f"--data {data!r} holds arrays {exc.names}; name the training samples 'samples' "
                "(numpy.savez(path, samples=x))"
            ) from None
        x = torch.as_tensor(array).to(torch.float32)
        if x.ndim < 2 or x.shape[0] < 2:
            raise InputFileError(
                f"--data {data!r} holds an array of shape {tuple(x.shape)}; save the training "
                "samples one per row, shape (n, d) with n >= 2"
            )
        if not bool(torch.isfinite(x).all()):
            raise InputFileError(f"--data {data!r} holds NaN/Inf; remove those rows")
        return x
    from samplekit.api import get_target

    try:
        target = get_target(data)
    except UnknownComponentError as exc:
        raise UnknownComponentError(
            f"--data {data!r} is neither an .npz/.npy file nor a registered target: {exc}"
        ) from None
    return target.reference(num_data, seed).to(torch.float32)


@click.command("train")
@click.option(
    "--data",
    required=True,
    metavar="PATH|TARGET",
    help="training samples: an .npz (array 'samples') / .npy file, or a registered target to sample",
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="directory for the trained model")
@click.option("--force", is_flag=True, help="replace a model already in --out (implied by --resume)")
@click.option("--sde", "sde_name", default="vp", show_default=True)
@click.option("--loss", type=click.Choice(["dsm", "ssm"]), default="dsm", show_default=True)
@click.option(
    "--weighting",
    default="eps",
    show_default=True,
    help="loss weighting over time (samplekit.training.train.WEIGHTINGS: eps, likelihood, x0, v)",
)
@click.option("--parametrization", type=click.Choice(["eps", "score", "x0", "v"]), default="eps", show_default=True)
@click.option(
    "--projection", default="rademacher", show_default=True, help="SSM: the random projections (gaussian or rademacher)"
)
@click.option("--steps", default=2000, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(1))
@click.option("--lr", default=1e-3, show_default=True, type=float)
@click.option("--hidden", default=128, show_default=True, type=click.IntRange(1))
@click.option("--depth", default=3, show_default=True, type=click.IntRange(1))
@click.option(
    "--num-data", default=20000, show_default=True, type=click.IntRange(2), help="samples drawn when --data is a target"
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="write a resumable checkpoint here")
@click.option("--resume", is_flag=True, help="continue from --checkpoint if it exists")
@click.option("--progress/--no-progress", default=True)
def train_command(
    data,
    out,
    force,
    sde_name,
    loss,
    weighting,
    parametrization,
    projection,
    steps,
    batch_size,
    lr,
    hidden,
    depth,
    num_data,
    seed,
    checkpoint,
    resume,
    progress,
) -> None:
    """Train an MLP score network on 2-D/vector data by score matching; save it for `samplekit sample --model`."""
    from samplekit.cli.outputs import output_dir

    if resume and not checkpoint:
        raise click.BadParameter("--resume needs --checkpoint PATH", param_hint="--resume")
    output_dir(out, force or resume, "samplekit.json")
    if checkpoint is not None and Path(checkpoint).exists() and not (resume or force):
        raise click.BadParameter(
            f"{checkpoint!r} exists; pass --resume to continue from it or --force to start over and overwrite it",
            param_hint="--checkpoint",
        )

    import torch

    from samplekit.api import get_sde
    from samplekit.errors import InvalidArgumentError
    from samplekit.loading import save_model
    from samplekit.training.nets import TimeMLP
    from samplekit.training.train import Trainer

    x = training_data(data, num_data, seed)
    if x.ndim != 2:
        raise click.BadParameter(
            f"the data has samples of shape {tuple(x.shape[1:])}; the MLP trains on vectors (n, d): flatten them first",
            param_hint="--data",
        )
    sde = get_sde(sde_name)
    torch.manual_seed(seed)
    arch = {"dim": int(x.shape[1]), "hidden": hidden, "depth": depth}
    net = TimeMLP(**arch)
    options = {"projection": projection} if loss == "ssm" else {}
    trainer = Trainer(
        net,
        sde,
        x,
        parametrization,
        loss,
        weighting,
        batch_size,
        lr,
        seed,
        options,
        checkpoint=checkpoint,
        progress=progress,
    )
    if resume and Path(checkpoint).is_file():
        trainer.resume(checkpoint)
        if trainer.step >= steps:
            raise InvalidArgumentError(
                f"--steps {steps}: the checkpoint is at step {trainer.step} and --steps is the total: nothing to "
                f"train; pass --steps above {trainer.step}"
            )
        click.echo(f"resumed from {checkpoint} at step {trainer.step}")
    first_step = trainer.step
    start = time.time()
    history = trainer.fit(steps)
    tail = history[-200:] or [float("nan")]
    info = {
        "data": str(data),
        "loss": loss,
        "weighting": weighting,
        "steps": trainer.step,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "seconds": round(time.time() - start, 1),
        "final_loss_mean200": round(sum(tail) / len(tail), 5),
    }
    save_model(
        out,
        net,
        "mlp",
        arch,
        parametrization,
        sde,
        (int(x.shape[1]),),
        extra={"name": Path(out).name, "training": info},
    )
    click.echo(
        f"trained {loss} ({weighting}) for {trainer.step - first_step} steps"
        f"{f' (from step {first_step} to {trainer.step})' if first_step else ''}, "
        f"final loss {info['final_loss_mean200']:.4g}; "
        f"wrote {out} (samplekit sample --model {out})"
    )
