"""``samplekit fit-solver``: fit a solver to a target or a network at one budget and write the fitted
sampler file that ``samplekit sample --fitted FILE`` runs.

    samplekit fit-solver --target gmm16_full --sde vp --nfe 5 --method ld3 --option coefficients=true --out f.json
    samplekit sample --target gmm16_full --sde vp --fitted f.json -n 1000 --out x.npz
"""

from __future__ import annotations

import click


def _parse_options(method: str, pairs) -> dict:
    """KEY=VALUE texts parsed against the fitter's declared option types (``samplekit.options``, as solver
    options are)."""
    from samplekit.fitted import fitter_class
    from samplekit.options import parse_options

    texts: dict[str, str] = {}
    for pair in pairs:
        key, sep, text = str(pair).partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE, e.g. --option iters=200", param_hint="--option")
        texts[key] = text
    return parse_options(fitter_class(method), f"fitter {method!r}", texts)


@click.command("fit-solver")
@click.option("--target", default="ring2d", show_default=True, help="a registered target (samplekit list target)")
@click.option(
    "--model", "model_source", metavar="PATH|NAME", help="fit to a network (a path or a shipped model's name)"
)
@click.option("--loader", help="the model loader for --model (samplekit list model_loader)")
@click.option("--sde", "sde_name", help="a registered SDE [default: vp; a loaded model's own]")
@click.option("--nfe", required=True, type=click.IntRange(2), help="the budget the solver is fitted for")
@click.option("--method", default="ld3", show_default=True, help="a registered fitter (samplekit list fitter)")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE", help="a fitter option (repeatable)")
@click.option("--num-fit", default=512, show_default=True, type=click.IntRange(2), help="x_T draws the fit uses")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**62))
@click.option(
    "--max-nfe", type=click.IntRange(1), help="cap on network calls spent fitting [default: 3000 x nfe + 2000]"
)
@click.option("--max-seconds", default=300.0, show_default=True, type=click.FloatRange(min=0, min_open=True))
@click.option("--no-cache", is_flag=True, help="fit again even if a cached fit exists (and do not store this one)")
@click.option("--out", required=True, help="the fitted sampler file to write (.json)")
@click.option("--force", is_flag=True, help="overwrite an existing --out")
def fit_solver_command(
    target,
    model_source,
    loader,
    sde_name,
    nfe,
    method,
    options,
    num_fit,
    seed,
    max_nfe,
    max_seconds,
    no_cache,
    out,
    force,
) -> None:
    """Fit a solver (AMED, EPD, LD3, optimized grid) to a model at --nfe and write the fitted sampler file."""
    from samplekit.cli.model_choice import choose_model
    from samplekit.cli.outputs import output_file
    from samplekit.fitted import fit_solver

    out_path = output_file(out, force, "--out", ".json")
    parsed = _parse_options(method, options)
    model, label = choose_model(target, model_source, loader, sde_name, None, None, False)
    fitted = fit_solver(
        model,
        nfe,
        method=method,
        num_fit=num_fit,
        seed=seed,
        max_nfe=max_nfe,
        max_seconds=max_seconds,
        cache=not no_cache,
        **parsed,
    )
    fitted.save(out_path)
    fit = fitted.fit
    note = f"; fell back to its baseline: {fit['fallback']}" if fit.get("fallback") else ""
    click.echo(
        f"fitted {method} to {label} ({model.sde.name}) at {nfe} NFE: fit loss {fit['loss']:.4g} vs its baseline "
        f"{fit['baseline']} {fit['baseline_loss']:.4g}; spent {fit['nfe_spent']} network calls, {fit['seconds']:.1f} s"
        f"{note}; wrote {out_path}"
    )


def fitted_for_sample(path: str, solver: str, options, ts_path):
    """The FittedSampler of ``sample --fitted FILE``; --solver, --option and --ts are refused beside it."""
    from samplekit.fitted import FittedSampler

    clash = [
        f for f, given in (("--solver", solver != "euler_maruyama"), ("--option", options), ("--ts", ts_path)) if given
    ]
    if clash:
        raise click.BadParameter(
            f"{', '.join(clash)} given with --fitted, which sets the solver, options and grid", param_hint="--fitted"
        )
    return FittedSampler.load(path)
