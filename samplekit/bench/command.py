"""``samplekit bench``: run a benchmark suite (default: benchmarks/suites/default.toml) and report.

    samplekit bench                                   # the default suite -> a fresh out/<time>-default/
    samplekit bench --solvers dpmpp_2m,ddim --nfe 10,20 --out out/mine
    samplekit bench --model ring2d_mlp                # a shipped model, with its own reference
    samplekit bench --model net.pt --loader torch --parametrization eps --sde vp --shape 2 --data data.npz

A run without ``--out`` writes a directory of its own (named by time and suite) and says where; an
explicit ``--out`` resumes (or extends) the run recorded there.  ``--model`` takes the model flags of
``samplekit sample`` (``model_options``).  A failed cell makes the exit status 1.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from samplekit.cli.app import SamplekitCommand
from samplekit.cli.model_choice import ModelFlags, model_options
from samplekit.errors import SamplekitError

RUNS_DIR = Path("out")  # a run without --out: out/<YYYYmmdd-HHMMSS>-<suite>/


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


def fresh_run_dir(suite_name: str, root: Path = RUNS_DIR, now: float | None = None) -> Path:
    """``root/<YYYYmmdd-HHMMSS>-<suite>``, with ``-2``, ``-3``... if that exists: a run without --out never
    touches another run's results (``make bench``'s out/default included)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    path = root / f"{stamp}-{suite_name}"
    k = 2
    while path.exists():
        path, k = root / f"{stamp}-{suite_name}-{k}", k + 1
    return path


def user_target(flags: ModelFlags, data_path: str | None, registry, suite):
    """The target of ``--model``: a shipped model as registered (its own reference and metrics) unless it is
    conditioned (--cond/--class) or given --data; else the built model against --data, or against its own
    dynamics without it.  Returns (name, target or None for a registered one)."""
    from samplekit.bench.targets import reference_free_target, user_model_target

    chosen = flags.build()
    shipped = flags.source is not None and not Path(flags.source).exists() and flags.loader is None
    if shipped and not flags.conditioned and data_path is None:
        return flags.source, None
    name = Path(chosen.label).stem or "model"
    if flags.class_label is not None:
        name += f"_class{flags.class_label}"
    if data_path is not None:
        return name, user_model_target(name, chosen.model, data_path)
    return name, reference_free_target(registry, name, chosen.model, suite)


@click.command("bench", cls=SamplekitCommand)
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
@click.option("--sdes", help="comma-separated SDEs of the suite's targets (samplekit list sde)")
@click.option("--metrics", help="comma-separated metrics (samplekit list metric); the first is the headline")
@click.option("-n", "--num-samples", type=int, help="samples per cell (and per reference set)")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="output directory, resumed if it holds a run; default: a fresh out/<time>-<suite>/ (printed)",
)
@model_options
@click.option(
    "--data",
    "--reference",
    "data_path",
    help="samples of --model's data: .npz ('samples') or .npy; the solvers' samples are compared with them "
    "(SW2 and the suite's set distances).  Without it a model is measured against its own dynamics "
    "(a tight ODE solve from the same x_T; a fine-grid SDE set)",
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
    data_path,
    retry_failed,
    write_csv,
    no_plots,
    no_progress,
    **model_flags,
) -> None:
    """Benchmark sample quality per NFE over targets x SDEs x solvers x budgets x seeds.

    Finished cells are appended to OUT/results*.jsonl as they finish, so a rerun with the same --out
    resumes where an interrupted one stopped.  Prints the recommended solvers and writes OUT/table.md
    (the full table) and the figures.  Exit status: 0, 1 if a cell failed, 2 for bad input.
    """
    from samplekit import distributed
    from samplekit.bench import shards
    from samplekit.bench.harness import run_suite
    from samplekit.bench.suite import default_suite_path, load_suite
    from samplekit.plugins import get_registry

    flags = ModelFlags.from_options(model_flags)
    if flags.source is None and (flags.given() or data_path):
        flag = (flags.given() or ["--data"])[0]
        raise click.BadParameter(
            f"{flag} applies to --model (the network to benchmark); the suite's targets are chosen with --targets",
            param_hint=flag,
        )
    path = Path(suite_path) if suite_path else default_suite_path()
    suite = load_suite(path)
    registry = get_registry()
    extra = {}
    target_names = _csv(targets, "--targets")
    if flags.source is not None:
        name, user = user_target(flags, data_path, registry, suite)
        if user is not None:
            extra[name] = user
        target_names = (*(target_names or ()), name)
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
    rank, _ = distributed.world()
    out_dir = Path(out) if out else shards.agree(fresh_run_dir(suite.name))  # every rank the same directory
    if rank == 0:
        click.echo(f"suite {suite.name} ({path}) -> {out_dir}", err=True)
    try:
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
        click.echo(
            f"interrupted: every finished cell is saved in {out_dir}; rerun with --out {out_dir} to resume", err=True
        )
        raise SystemExit(130) from None
    if outcome.table:  # rank 0 reports; other ranks only share the exit status
        if write_csv:
            from samplekit.bench.results import load_results

            frame = load_results(outcome.out)
            frame.to_csv(outcome.out / "results.csv", index=False)
            outcome.files.append(outcome.out / "results.csv")
        click.echo(outcome.table)
        c = outcome.counts
        click.echo(
            f"{c['ok']} cells ok, {c['failed']} failed, {c['skipped']} skipped, {c['already_done']} already done "
            f"(all ranks); full table: {outcome.out / 'table.md'}; resume or extend: --out {outcome.out}"
        )
        click.echo("wrote " + ", ".join(str(f) for f in outcome.files), err=True)
    if outcome.failures:
        if not outcome.table:
            raise SystemExit(1)
        raise BenchFailedError(outcome.failures)


class BenchFailedError(SamplekitError):
    """Cells failed (their records say why); the run's results are written all the same."""

    exit_code = 1

    def __init__(self, failures: list[str]) -> None:
        shown = "; ".join(failures[:3]) + (f"; and {len(failures) - 3} more" if len(failures) > 3 else "")
        super().__init__(f"{len(failures)} cell(s) failed: {shown} (see 'Skipped and failed cells' in table.md)")
