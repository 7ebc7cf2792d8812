"""One benchmark run end to end: validate, run the missing cells, write the table and the figures.

Outputs in ``out``: ``results.jsonl`` (one record per finished cell), ``table.md``,
``quality_vs_nfe.png`` and ``<target>_samples.png`` for each 2-D target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from samplekit.bench import plots, report
from samplekit.bench.grid import Cell, build_cells, validate
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


def run_suite(suite: Suite, out: str | Path, registry=None, extra_targets: dict | None = None,
              progress: bool = True, retry_failed: bool = False, make_plots: bool = True,
              echo=print) -> BenchOutcome:
    registry = registry or get_registry()
    out = Path(out)
    targets = validate(suite, registry, extra_targets)          # every name and option, before any work
    cells = build_cells(suite, registry, targets)
    store = ResultsStore(out / "results.jsonl")
    with OutputLock(out) as lock:                                # a second live run on `out` stops here
        if lock.took_over is not None:
            echo(f"took over a stale lock of pid {lock.took_over} (that run is gone)")
        store.load()                                             # corruption stops here, file untouched
        for problem in store.problems():                         # a torn last line, incomplete records
            echo(f"warning: {problem}")
        with store:
            counts = run_cells(cells, BenchContext(registry, targets, list(suite.metrics)), store, progress,
                               retry_failed)
    metric_info = {m: dict(registry.get("metric", m).info) for m in suite.metrics}
    table = report.render(store.records, cells, suite, metric_info)
    (out / "table.md").write_text(table, encoding="utf-8")
    files = [out / "results.jsonl", out / "table.md"]
    if make_plots:
        files += write_plots(suite, registry, targets, cells, store.records, metric_info, out, echo)
    return BenchOutcome(out, counts, report.render(store.records, cells, suite, metric_info, primary_only=True),
                        files, store.records, cells)


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
    files = [plots.quality_vs_nfe(rows_by, floors, labels, adaptive, primary,
                                  metric_info[primary].get("label", primary), out / "quality_vs_nfe.png",
                                  order=list(suite.targets))]
    for name, target in targets.items():
        if tuple(target.shape) == (2,):
            files.append(scatter_2d(name, target, suite, registry, solver_cells, records, out))
    return files


def scatter_2d(name, target, suite, registry, solver_cells, records, out: Path) -> Path:
    """Exact reference next to each solver's samples at the suite's scatter NFE (seed = first seed),
    redrawn with the same seed as in the table (adaptive solvers: their loosest tolerance)."""
    seed, nfe = suite.seeds[0], suite.scatter_nfe
    panels = {"exact reference": target.reference(suite.num_samples, seed).numpy()}
    chosen: dict[str, Cell] = {}
    for c in solver_cells:
        if c.target != name or c.seed != seed or records.get(c.key, {}).get("status") != "ok":
            continue
        if (c.adaptive and c.label not in chosen) or (not c.adaptive and c.nfe == nfe):
            chosen[c.label] = c
    for label, c in chosen.items():
        rec = records[c.key]
        model = target.model(getattr(target, "fixed_sde", None) or registry.create("sde", c.sde))
        solver = build_solver(registry.get("solver", c.solver).factory, c.solver, c.solver_options)
        res = sample(model, solver=solver, nfe=c.nfe, num_samples=c.num_samples, seed=c.seed, progress=False,
                     dtype=getattr(torch, c.dtype))
        metric = suite.primary_metric
        value = rec["metrics"].get(metric)
        shown = registry.get("metric", metric).info.get("label", metric)
        panels[f"{label} @{res.nfe}" + (f"  {shown} {value:.3g}" if value is not None else "")] = \
            res.samples.double().numpy()
    lim = float(panels["exact reference"].__abs__().max()) * 1.15
    return plots.sample_scatter(panels, out / f"{name}_samples.png",
                                title=f"{name}: samples at NFE {nfe} (seed {seed})", lim=lim)
