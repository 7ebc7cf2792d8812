"""``samplekit likelihood``: log-density of points (a built-in target's samples or an .npz) by the
probability-flow ODE."""

from __future__ import annotations

import json
import math

import click

from samplekit.errors import InvalidArgumentError


def _load_points(path: str, key: str | None):
    import torch

    from samplekit.arrays import ArrayChoiceError, read_array

    try:
        array = read_array(path, key or "samples", only_if_single=key is None, what="--points")
    except ArrayChoiceError as exc:
        raise click.BadParameter(
            f"{path} holds arrays {exc.names}; name one with --key", param_hint="--points"
        ) from None
    return torch.as_tensor(array, dtype=torch.float64)


@click.command("likelihood")
@click.option(
    "--target",
    default="ring2d",
    show_default=True,
    help="a registered target (samplekit list target): its model, and its samples unless --points",
)
@click.option("--sde", "sde_name", default="vp", show_default=True, help="a registered SDE (samplekit list sde)")
@click.option("--points", type=click.Path(exists=True, dir_okay=False), help="an .npz of points, shape (n, *shape)")
@click.option("--key", help="the array in --points (default 'samples', or the only array)")
@click.option(
    "-n", "--num-points", default=500, show_default=True, type=click.IntRange(1), help="target samples when no --points"
)
@click.option(
    "--estimator",
    default="hutchinson_rademacher",
    show_default=True,
    help="trace estimator (samplekit list trace_estimator)",
)
@click.option(
    "--method",
    default="dopri5",
    show_default=True,
    help="torchdiffeq method, adams_pec / adams_pece, or hermite_pec (half the NFE, needs a t-differentiable model)",
)
@click.option("--rtol", default=1e-5, show_default=True, type=float)
@click.option("--atol", default=1e-5, show_default=True, type=float)
@click.option("--n-probes", default=1, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--bins", type=click.IntRange(2), help="bits/dim of discrete data with this many levels (e.g. 256)")
@click.option(
    "--data-range",
    nargs=2,
    type=float,
    default=(-1.0, 1.0),
    show_default=True,
    help="the range the levels were scaled to (with --bins)",
)
@click.option("--out", help="write per-point log_prob and bits_per_dim to this .npz")
@click.option("--force", is_flag=True, help="overwrite an existing --out file")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
def likelihood_command(
    target,
    sde_name,
    points,
    key,
    num_points,
    estimator,
    method,
    rtol,
    atol,
    n_probes,
    seed,
    bins,
    data_range,
    out,
    force,
    as_json,
) -> None:
    """Log-likelihood of points under a target's score model, by the probability-flow ODE.

    Prints the mean log p_{t_min} (nats), bits/dim, the NFE spent and, for a target with an
    exact density, the mean absolute error per dimension against the exact log p_{t_min}.
    """
    from samplekit.cli.outputs import output_file, write_npz

    out_path = output_file(out, force, "--out", ".npz") if out else None
    if key is not None and points is None:
        raise click.BadParameter("--key names an array of --points; give --points too", param_hint="--key")

    import torch

    from samplekit.api import get_sde, get_target
    from samplekit.likelihood import log_likelihood

    target_obj = get_target(target)
    sde = get_sde(sde_name)
    model = target_obj.model(sde)
    if getattr(model.sde, "name", sde_name) != sde.name:  # a shipped network keeps the SDE it was trained on
        source = click.get_current_context().get_parameter_source("sde_name")
        if source is click.core.ParameterSource.COMMANDLINE:
            raise InvalidArgumentError(
                f"--sde {sde_name}: target {target!r} is a network trained on SDE {model.sde.name!r}, which it "
                "keeps; drop --sde"
            )
        sde = model.sde
    x = _load_points(points, key) if points else target_obj.reference(num_points, seed=seed).to(torch.float64)
    res = log_likelihood(
        model,
        x,
        estimator=estimator,
        method=method,
        rtol=rtol,
        atol=atol,
        n_probes=n_probes,
        seed=seed,
        bins=bins,
        data_range=tuple(data_range),
    )
    d = x[0].numel()
    summary = {
        "target": target,
        "sde": sde_name,
        "points": x.shape[0],
        "estimator": res.estimator,
        "method": method,
        "rtol": rtol,
        "atol": atol,
        "n_probes": n_probes,
        "mean_log_prob": res.log_prob.mean().item(),
        "mean_bits_per_dim": res.bits_per_dim.mean().item(),
        "nfe": res.nfe,
        "n_vjp": res.n_vjp,
        "seconds": res.seconds,
        "seconds_per_1000_points": 1000 * res.seconds / x.shape[0],
    }
    if res.stderr is not None:
        summary["stderr_of_mean"] = (res.stderr.pow(2).sum().sqrt() / x.shape[0]).item()
    mixture = getattr(target_obj, "mixture", None)
    if mixture is not None:
        alpha, sigma = sde.marginal(sde.t_min)
        exact = mixture.noised_log_prob(x, alpha, sigma)
        summary["exact_mean_log_prob"] = exact.mean().item()
        summary["mean_abs_error_nats_per_dim"] = ((res.log_prob - exact).abs().mean() / d).item()
    if out_path is not None:
        written = write_npz(
            out_path,
            force,
            log_prob=res.log_prob.numpy(),
            bits_per_dim=res.bits_per_dim.numpy(),
            nfe=res.nfe,
            **({"stderr": res.stderr.numpy()} if res.stderr is not None else {}),
        )
        summary["out"] = str(written)
    if as_json:
        click.echo(json.dumps(summary, indent=1))
        return
    click.echo(
        f"{x.shape[0]} points of {target if not points else points} ({sde_name}, {res.estimator}, {method}, "
        f"rtol={rtol:g}, atol={atol:g})"
    )
    click.echo(
        f"  mean log p_t_min = {summary['mean_log_prob']:.4f} nats"
        + (f" +- {summary['stderr_of_mean']:.4f}" if "stderr_of_mean" in summary else "")
    )
    click.echo(f"  bits/dim        = {summary['mean_bits_per_dim']:.4f}")
    if "exact_mean_log_prob" in summary:
        click.echo(
            f"  exact           = {summary['exact_mean_log_prob']:.4f} nats; mean |error| = "
            f"{summary['mean_abs_error_nats_per_dim']:.2e} nats/dim"
        )
    click.echo(
        f"  NFE {res.nfe}, {res.n_vjp} backward passes, {res.seconds:.2f} s "
        f"({summary['seconds_per_1000_points']:.2f} s per 1000 points)"
    )
    if "out" in summary:
        click.echo(f"  wrote per-point log_prob and bits_per_dim to {summary['out']}")
    if not math.isfinite(summary["mean_log_prob"]):
        raise click.ClickException("the log-likelihood is not finite")
