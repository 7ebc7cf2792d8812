"""One benchmark run end to end: validate, run the missing cells, write the table and the figures.

Outputs in ``out``: ``results.jsonl`` (one record per finished cell; ``results.rank<r>.jsonl`` per rank under
torchrun), ``table.md`` (Recommended first), ``quality_vs_nfe_<family>.png`` and ``quality_vs_time_<family>.png``
per family of targets (exact, networks, images), ``recommended.png`` and ``<target>_samples.png`` for each
2-D or image target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from samplekit import distributed
from samplekit.bench import plots, report, shards
from samplekit.bench.flow import FLOW_SOLVER, prior_draw
from samplekit.bench.grid import Cell, build_cells, has_flow_solver, validate
from samplekit.bench.lock import OutputLock
from samplekit.bench.runner import BenchContext, Progress, pending, run_cells
from samplekit.bench.store import ResultsStore
from samplekit.bench.suite import Suite
from samplekit.plugins import get_registry
from samplekit.sampling import sample
from samplekit.solver import build_solver


@dataclass
class BenchOutcome:
    out: Path
    counts: dict
    table: str
    files: list[Path] = field(default_factory=list)
    records: dict = field(default_factory=dict)
    cells: list = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # one line per failed cell (every rank's)


def run_suite(
    suite: Suite,
    out: str | Path,
    registry=None,
    extra_targets: dict | None = None,
    progress: bool = True,
    retry_failed: bool = False,
    make_plots: bool = True,
    echo=print,
) -> BenchOutcome:
    registry = registry or get_registry()
    out = Path(out)
    targets = validate(suite, registry, extra_targets)  # every name and option, before any work
    cells = build_cells(suite, registry, targets)
    if suite.flow_reference and not has_flow_solver(suite, registry):
        echo(
            f"warning: no distance to a reference ODE solution: the solver {FLOW_SOLVER!r} is not registered "
            "(pip install 'samplekit[ode]')"
        )
    rank, size = distributed.world()  # (0, 1) unless under torchrun
    store = ResultsStore(out / shards.shard_name(rank, size))
    with OutputLock(out, rank) as lock:  # a second live run on `out` stops here
        if lock.took_over is not None:
            echo(f"took over a stale lock of pid {lock.took_over} (that run is gone)")
        others, problems = shards.load_merged(out, skip=store.path)  # corruption stops here, files untouched
        store.load()
        for problem in problems + store.problems():  # a torn last line, incomplete records
            echo(f"warning: {problem}")
        with store:
            ctx = BenchContext(registry, targets, list(suite.metrics), suite.bootstrap, suite.primary_metric)
            done = {**others, **store.records}
            mine = shards.deal(cells, rank, size)
            shown = _progress(out, cells, mine, done, retry_failed, rank, size)
            counts = run_cells(mine, ctx, store, progress and rank == 0, retry_failed, done=done, shown=shown)
    if size > 1:
        distributed.barrier()  # every rank's cells are on disk
        counts = shards.total(counts)
    records = shards.load_merged(out)[0] if rank == 0 else {}
    failures = shards.agree(failed_cells(records, cells))
    if rank != 0:
        return BenchOutcome(out, counts, "", [store.path], store.records, cells, failures)
    metric_info = {m: dict(registry.get("metric", m).info) for m in suite.metrics}
    notes = {name: t.bench_note for name, t in targets.items() if getattr(t, "bench_note", None)}
    table = report.render(records, cells, suite, metric_info, target_notes=notes)
    (out / "table.md").write_text(table, encoding="utf-8")
    files = [*shards.result_files(out), out / "table.md"]
    if make_plots:
        files += write_plots(suite, registry, targets, cells, records, metric_info, out, echo)
    return BenchOutcome(
        out, counts, report.summary(records, cells, suite, metric_info, notes), files, records, cells, failures
    )


def _progress(out: Path, cells, mine, done, retry_failed, rank, size) -> Progress:
    """Rank 0's bar counts every rank's cells (the other shards watched); one process: its own."""
    todo = len(pending(cells, done, retry_failed))
    if size == 1:
        return Progress(len(cells), len(cells) - todo)
    paths = [out / shards.shard_name(r, size) for r in range(size) if r != rank]
    return Progress(
        len(cells),
        len(cells) - todo,
        desc=f"bench ({size} ranks)",
        watch=shards.ShardWatch(paths),
        others=todo - len(pending(mine, done, retry_failed)),
    )


def failed_cells(records: dict, cells: list) -> list[str]:
    """One line per failed cell of this suite: where it failed and the first line of its error."""
    out = []
    for c in cells:
        rec = records.get(c.key, {})
        if rec.get("status") != "failed":
            continue
        error = (rec.get("error") or "").splitlines()[0] if rec.get("error") else "no error recorded"
        if isinstance(c, Cell):
            budget = f"tol {c.tol:g}" if c.tol is not None else f"NFE {c.nfe}"
            out.append(f"{c.label} on {c.target} ({c.sde}) {budget} seed {c.seed}: {error}")
        else:
            out.append(f"{c.target} {c.kind} seed {c.seed}: {error}")
    return out


def _families(cells: list, records: dict) -> dict:
    """label -> its family for the figures: adaptive ODE, stochastic, or deterministic ODE."""
    fam = {}
    for c in cells:
        rec = records.get(c.key, {})
        if c.adaptive:
            fam[c.label] = "adaptive ODE"
        elif c.label not in fam and "stochastic" in rec:
            fam[c.label] = "stochastic" if rec["stochastic"] else "deterministic ODE"
    return fam


FAMILY_FILES = {"exact mixtures": "exact", "trained networks": "networks", "image models": "images"}


def target_family(target) -> str:
    """The figure a target is drawn in: its own ``family``, else exact mixtures, image models, or trained
    networks (the rest)."""
    own = getattr(target, "family", None)
    if own:
        return own
    if getattr(target, "exact", False):
        return "exact mixtures"
    shape = tuple(target.shape)
    return "image models" if len(shape) == 3 and shape[0] in (1, 3) else "trained networks"


def write_plots(suite, registry, targets, cells, records, metric_info, out: Path, echo) -> list[Path]:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        echo("matplotlib is not installed: no figures (pip install 'samplekit[plot]')")
        return []
    rows_by, floors = report.aggregate(records, cells)
    solver_cells = [c for c in cells if isinstance(c, Cell)]
    labels = list(dict.fromkeys(c.label for c in solver_cells))
    adaptive = {c.label for c in solver_cells if c.adaptive}
    primary = suite.primary_metric
    picks_by: dict = {}
    recommended: dict = {}
    for (target, sde), rows in rows_by.items():
        picks = report.recommend(
            rows, [lab for lab in labels if lab in rows], adaptive, sorted(suite.for_target(target).nfe), primary
        )
        picks_by[(target, sde)] = picks
        for p in picks:
            recommended.setdefault((target, sde), {}).setdefault(p.best, []).append(p.nfe)
    order = list(suite.targets)
    colours = plots.highlight_colours(
        {k: recommended[k] for k in sorted(recommended, key=lambda k: (order.index(k[0]) if k[0] in order else 99, k))}
    )
    family = _families(solver_cells, records)
    shown = metric_info[primary].get("label", primary)
    budgets = {t: sorted(suite.for_target(t).nfe) for t in targets}
    files = []
    groups: dict[str, list] = {}
    for key in rows_by:
        groups.setdefault(target_family(targets[key[0]]), []).append(key)
    for fam, keys in groups.items():
        slug = FAMILY_FILES.get(fam, fam.replace(" ", "_"))
        for x in ("nfe", "time"):
            files.append(
                plots.quality_figure(
                    {k: rows_by[k] for k in keys},
                    floors,
                    labels,
                    adaptive,
                    family,
                    primary,
                    shown,
                    recommended,
                    out / f"quality_vs_{x}_{slug}.png",
                    order=order,
                    x=x,
                    title=fam,
                    budgets=budgets,
                    colours=colours,
                )
            )
    if picks_by:
        labels_of = {m: i.get("label", m) for m, i in metric_info.items()}
        files.append(plots.recommended_figure(picks_by, out / "recommended.png", colours, order, labels_of))
    for name, target in targets.items():
        shape = tuple(target.shape)
        try:
            if shape == (2,):
                files.append(scatter_2d(name, target, suite, registry, solver_cells, records, out, picks_by))
            elif len(shape) == 3 and shape[0] in (1, 3):
                files.append(images(name, target, suite, registry, solver_cells, records, out, picks_by))
        except Exception as exc:  # a figure must not lose the run's results
            echo(f"warning: no sample figure for {name}: {type(exc).__name__}: {exc}")
    return files


def recommended_at(picks_by: dict, target: str, nfe: int) -> set[str]:
    """The solvers recommended for ``target`` at budget ``nfe`` (any of its SDEs)."""
    return {p.best for (t, _), picks in picks_by.items() if t == target for p in picks if p.nfe == nfe}


def _chosen(name, suite, solver_cells, records) -> tuple[int, int, dict]:
    """The cells drawn in a sample figure: each solver at the scatter NFE (adaptive: loosest tolerance)."""
    own = suite.for_target(name)
    seed = own.seeds[0]
    nfe = own.scatter_nfe if own.scatter_nfe in own.nfe else sorted(own.nfe)[0]
    chosen: dict[str, Cell] = {}
    for c in solver_cells:
        if c.target != name or c.seed != seed or records.get(c.key, {}).get("status") != "ok":
            continue
        if (c.adaptive and c.label not in chosen) or (not c.adaptive and c.nfe == nfe):
            chosen[c.label] = c
    return seed, nfe, chosen


def _redraw(c: Cell, target, registry, n: int) -> tuple[torch.Tensor, int]:
    """The cell's samples again (same seed and x_T as in the table; the first n)."""
    model = target.model(getattr(target, "fixed_sde", None) or registry.create("sde", c.sde))
    solver = build_solver(registry.get("solver", c.solver).factory, c.solver, c.solver_options)
    x_T = prior_draw(model, c.num_samples, c.seed, getattr(torch, c.dtype))[:n] if c.flow_tol is not None else None
    res = sample(
        model,
        solver=solver,
        nfe=c.nfe,
        num_samples=n,
        seed=c.seed,
        progress=False,
        dtype=getattr(torch, c.dtype),
        x_T=x_T,
    )
    return res.samples.double(), res.nfe


def scatter_2d(name, target, suite, registry, solver_cells, records, out: Path, picks_by=None) -> Path:
    """Exact reference next to each solver's samples at the suite's scatter NFE (seed = first seed),
    redrawn with the same seed as in the table (adaptive solvers: their loosest tolerance); the solver
    recommended at that NFE comes first, starred."""
    seed, nfe, chosen = _chosen(name, suite, solver_cells, records)
    picked = recommended_at(picks_by or {}, name, nfe)
    chosen = dict(sorted(chosen.items(), key=lambda kv: kv[0] not in picked))
    n = suite.for_target(name).num_samples
    panels = {"exact reference": target.reference(n, seed).numpy()}
    for label, c in chosen.items():
        rec = records[c.key]
        samples, spent = _redraw(c, target, registry, c.num_samples)
        metric = "flow_error" if rec["metrics"].get("flow_error") is not None else suite.primary_metric
        value = rec["metrics"].get(metric)
        shown = "dist" if metric == "flow_error" else registry.get("metric", metric).info.get("label", metric)
        panels[
            f"{'★ ' if label in picked else ''}{label} @{spent}"
            + (f"  {shown} {value:.3g}" if value is not None else "")
        ] = samples.numpy()
    lim = float(panels["exact reference"].__abs__().max()) * 1.15
    return plots.sample_scatter(
        panels,
        out / f"{name}_samples.png",
        title=f"{name}: samples at NFE {nfe} (seed {seed}); ★ recommended at NFE {nfe}",
        lim=lim,
    )


def images(name, target, suite, registry, solver_cells, records, out: Path, picks_by=None, n: int = 16) -> Path:
    """A grid of n sample images per solver at the scatter NFE beside n reference images (the solver
    recommended at that NFE first, starred)."""
    seed, nfe, chosen = _chosen(name, suite, solver_cells, records)
    picked = recommended_at(picks_by or {}, name, nfe)
    chosen = dict(sorted(chosen.items(), key=lambda kv: kv[0] not in picked))
    panels = {"reference": target.reference(n, seed).numpy()}
    for label, c in chosen.items():
        try:
            samples, spent = _redraw(c, target, registry, n)
        except Exception:  # a model bound to one input per sample (CFG labels): the whole cell's batch
            samples, spent = _redraw(c, target, registry, c.num_samples)
            samples = samples[:n]
        panels[f"{'★ ' if label in picked else ''}{label} @{spent}"] = samples.numpy()
    return plots.image_grid(
        panels,
        out / f"{name}_samples.png",
        title=f"{name}: samples at NFE {nfe} (seed {seed}); ★ recommended at NFE {nfe}",
    )
