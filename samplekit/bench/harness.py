"""One benchmark run end to end: validate, run the missing cells, write the table and the figures.

Outputs in ``out``: ``results.jsonl`` (one record per finished cell), ``table.md``,
``quality_vs_nfe.png`` and ``<target>_samples.png`` for each 2-D target.
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
from samplekit.bench.runner import BenchContext, run_cells
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
            counts = run_cells(
                shards.deal(cells, rank, size), ctx, store, progress, retry_failed, done={**others, **store.records}
            )
    if size > 1:
        distributed.barrier()  # every rank's cells are on disk
        if rank != 0:
            return BenchOutcome(out, counts, "", [store.path], store.records, cells)
    records, _ = shards.load_merged(out)
    metric_info = {m: dict(registry.get("metric", m).info) for m in suite.metrics}
    notes = {name: t.bench_note for name, t in targets.items() if getattr(t, "bench_note", None)}
    table = report.render(records, cells, suite, metric_info, target_notes=notes)
    (out / "table.md").write_text(table, encoding="utf-8")
    files = [*shards.result_files(out), out / "table.md"]
    if make_plots:
        files += write_plots(suite, registry, targets, cells, records, metric_info, out, echo)
    return BenchOutcome(
        out,
        counts,
        report.render(records, cells, suite, metric_info, primary_only=True, target_notes=notes),
        files,
        records,
        cells,
    )


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
    recommended: dict = {}
    for (target, sde), rows in rows_by.items():
        picks = report.recommend(
            rows, [lab for lab in labels if lab in rows], adaptive, sorted(suite.for_target(target).nfe), primary
        )
        for p in picks:
            recommended.setdefault((target, sde), {}).setdefault(p.best, []).append(p.nfe)
    family = _families(solver_cells, records)
    shown = metric_info[primary].get("label", primary)
    files = [
        plots.quality_figure(
            rows_by,
            floors,
            labels,
            adaptive,
            family,
            primary,
            shown,
            recommended,
            out / name,
            order=list(suite.targets),
            x=x,
        )
        for name, x in (("quality_vs_nfe.png", "nfe"), ("quality_vs_time.png", "time"))
    ]
    for name, target in targets.items():
        shape = tuple(target.shape)
        picked = {lab for (t, _), r in recommended.items() if t == name for lab in r}
        try:
            if shape == (2,):
                files.append(scatter_2d(name, target, suite, registry, solver_cells, records, out, picked))
            elif len(shape) == 3 and shape[0] in (1, 3):
                files.append(images(name, target, suite, registry, solver_cells, records, out, picked))
        except Exception as exc:  # a figure must not lose the run's results
            echo(f"warning: no sample figure for {name}: {type(exc).__name__}: {exc}")
    return files


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


def scatter_2d(name, target, suite, registry, solver_cells, records, out: Path, picked=frozenset()) -> Path:
    """Exact reference next to each solver's samples at the suite's scatter NFE (seed = first seed),
    redrawn with the same seed as in the table (adaptive solvers: their loosest tolerance)."""
    seed, nfe, chosen = _chosen(name, suite, solver_cells, records)
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
        panels, out / f"{name}_samples.png", title=f"{name}: samples at NFE {nfe} (seed {seed}); ★ recommended", lim=lim
    )


def images(name, target, suite, registry, solver_cells, records, out: Path, picked=frozenset(), n: int = 16) -> Path:
    """A grid of n sample images per solver at the scatter NFE beside n reference images."""
    seed, nfe, chosen = _chosen(name, suite, solver_cells, records)
    panels = {"reference": target.reference(n, seed).numpy()}
    for label, c in chosen.items():
        try:
            samples, spent = _redraw(c, target, registry, n)
        except Exception:  # a model bound to one input per sample (CFG labels): the whole cell's batch
            samples, spent = _redraw(c, target, registry, c.num_samples)
            samples = samples[:n]
        panels[f"{'★ ' if label in picked else ''}{label} @{spent}"] = samples.numpy()
    return plots.image_grid(
        panels, out / f"{name}_samples.png", title=f"{name}: samples at NFE {nfe} (seed {seed}); ★ recommended"
    )
