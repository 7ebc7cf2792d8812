"""``samplekit bench``: run a benchmark suite (default: benchmarks/suites/default.toml) and report."""

from __future__ import annotations

from pathlib import Path

import click

from samplekit.registry import SamplekitError


def _csv(value: str | None, option: str, cast=str) -> tuple | None:
    return None if value is None else _items(value, option, cast)


def _items(value: str, option: str, cast=str) -> tuple:
    items = [v.strip() for v in value.split(",") if v.strip()]
    try:
        out = tuple(cast(v) for v in items)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} must be a comma-separated list of {cast.__name__}s", param_hint=option
        ) from None
    if not out:
        raise click.BadParameter("give at least one value", param_hint=option)
    return out


def select_solvers(suite, names: tuple[str, ...]):
    """--solvers a,b: rows of the suite with that name or label (keeping their options), else defaults."""
    from samplekit.bench.suite import SolverSpec

    if names == ("all",):
        return "all"
    rows = suite.solvers if isinstance(suite.solvers, tuple) else ()
    picked = []
    for name in names:
        matches = [s for s in rows if name in (s.name, s.label)]
        picked += [m for m in matches if m not in picked] or [SolverSpec(name)]
    return tuple(picked)


def image_headline(suite, registry, target):
    """A model without data: its headline is a metric made for its kind of data (e.g. ``digits_fd``, the
    shipped classifier's feature space for 8x8 digits) when the suite has one, else the suite's (pixel space)."""
    for name in suite.metrics:
        shape = registry.get("metric", name).info.get("sample_shape")
        if shape is not None and tuple(shape) == tuple(target.shape):
            return suite.replace(primary_metric=name)
    return suite


@click.command("bench")
@click.option(
    "--suite",
    "suite_path",
    type=click.Path(dir_okay=False),
    help="a TOML suite; default: benchmarks/suites/default.toml of this checkout, else the packaged copy",
)
@click.option("--solvers", help="comma-separated solver names (or 'all'), replacing the suite's")
@click.option("--nfe", help="comma-separated NFE budgets, e.g. 5,10,20,50")
@click.option("--seeds", help="comma-separated seeds, e.g. 0,1,2")
@click.option("--targets", help="comma-separated targets (samplekit list target)")
@click.option("--sdes", help="comma-separated SDEs (samplekit list sde)")
@click.option("--metrics", help="comma-separated metrics (samplekit list metric); the first is the headline")
@click.option("-n", "--num-samples", type=int, help="samples per cell (and per reference set)")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="output directory; default out/<suite name> (recorded results are written only to an explicit --out)",
)
@click.option("--model", "model_path", help="benchmark your own model: a path for --loader")
@click.option("--loader", help="the model loader for --model (samplekit list model_loader)")
@click.option(
    "--reference",
    "reference_path",
    help="reference samples for --model: .npz ('samples') or .npy; without it the solvers are measured "
    "against the model's own dynamics (a tight ODE solve from the same x_T; a fine-grid SDE set)",
)
@click.option("--retry-failed", is_flag=True, help="rerun cells recorded as failed")
@click.option("--csv", "write_csv", is_flag=True, help="also write OUT/results.csv (one row per record; needs pandas)")
@click.option("--no-plots", is_flag=True, help="skip the figures")
@click.option("--no-progress", is_flag=True, help="no progress bar")
def bench_command(
    suite_path,
    solvers,
    nfe,
    seeds,
    targets,
    sdes,
    metrics,
    num_samples,
    out,
    model_path,
    loader,
    reference_path,
    retry_failed,
    write_csv,
    no_plots,
    no_progress,
) -> None:
    """Benchmark sample quality per NFE over targets x SDEs x solvers x budgets x seeds.

    Finished cells are appended to OUT/results.jsonl as they finish, so a rerun resumes where an
    interrupted one stopped.  Prints the table and writes OUT/table.md and the figures.
    """
    from samplekit.bench.harness import run_suite
    from samplekit.bench.suite import default_suite_path, load_suite
    from samplekit.bench.targets import ReferenceFreeTarget, UserModelTarget, reference_free_target, user_model_target
    from samplekit.plugins import get_registry

    try:
        path = Path(suite_path) if suite_path else default_suite_path()
        suite = load_suite(path)
        registry = get_registry()
        extra = {}
        target_names = _csv(targets, "--targets")
        user: UserModelTarget | ReferenceFreeTarget | None = None
        if model_path or loader or reference_path:
            if not (model_path and loader):
                raise click.UsageError(
                    "--model and --loader go together (add --reference data.npz to compare with "
                    "data; without it the solvers are measured against the model's own dynamics)"
                )
            if reference_path:
                user = user_model_target(registry, model_path, loader, reference_path)
            else:
                user = reference_free_target(registry, model_path, loader, suite)
            extra[user.name] = user
            target_names = (*(target_names or ()), user.name)
        suite = suite.replace(
            targets=target_names,
            nfe=_csv(nfe, "--nfe", int),
            seeds=_csv(seeds, "--seeds", int),
            sdes=_csv(sdes, "--sdes"),
            metrics=_csv(metrics, "--metrics"),
            num_samples=num_samples,
        )
        if solvers is not None:
            suite = suite.replace(solvers=select_solvers(suite, _items(solvers, "--solvers")))
        if user is not None and getattr(user, "needs_sde_reference", False) and metrics is None:
            suite = image_headline(suite, registry, user)
        out_dir = Path(out) if out else Path("out") / suite.name  # never the committed benchmarks/results
        click.echo(f"suite {suite.name} ({path}) -> {out_dir}", err=True)
        outcome = run_suite(
            suite,
            out_dir,
            registry,
            extra,
            progress=not no_progress,
            retry_failed=retry_failed,
            make_plots=not no_plots,
            echo=lambda m: click.echo(m, err=True),
        )
    except KeyboardInterrupt:
        click.echo("interrupted: every finished cell is saved; rerun the same command to resume", err=True)
        raise SystemExit(130) from None
    except (SamplekitError, ValueError, TypeError) as exc:
        raise click.ClickException(str(exc)) from None
    if not outcome.table:  # a torchrun rank other than 0: rank 0 reports
        return
    if write_csv:
        from samplekit.bench.results import load_results

        try:
            frame = load_results(outcome.out)
        except ImportError as exc:
            raise click.ClickException(str(exc)) from None
        frame.to_csv(outcome.out / "results.csv", index=False)
        outcome.files.append(outcome.out / "results.csv")
    click.echo(outcome.table)
    c = outcome.counts
    click.echo(
        f"{c['ok']} cells ok, {c['failed']} failed, {c['skipped']} skipped, {c['already_done']} already done; "
        f"wrote {', '.join(str(f) for f in outcome.files)}"
    )
