"""Run cells: sample, score with every metric, record ok / failed / skipped; skip what is finished.

A solver that cannot meet a cell (an NFE below its minimum, an SDE it does not handle) gives a
``skipped`` record with the reason; one that raises, returns NaN/Inf or overspends its budget gives
a ``failed`` record with the error.  Either way the run goes on.  KeyboardInterrupt is not caught:
every finished cell is already on disk.
"""

from __future__ import annotations

import math
import time
import traceback

import torch
from tqdm.auto import tqdm

from samplekit.bench.grid import Cell, FloorCell
from samplekit.bench.store import ResultsStore
from samplekit.bench.targets import floor_set, reference_set
from samplekit.sampling import sample
from samplekit.solver import SolverError, build_solver

FLOOR_REPEAT_STRIDE = 1000  # the floor's k-th independent set is drawn with seed + 1000 k


class BenchContext:
    """Built things shared by cells: targets, SDEs, models, reference sets, metrics (all cached)."""

    def __init__(self, registry, targets: dict, metrics: list[str]) -> None:
        self.registry, self.targets = registry, targets
        self.metrics = {m: registry.get("metric", m) for m in metrics}
        self._models: dict = {}
        self._refs: dict = {}

    def model(self, target_name: str, sde_name: str):
        key = (target_name, sde_name)
        if key not in self._models:
            target = self.targets[target_name]
            sde = getattr(target, "fixed_sde", None) or self.registry.create("sde", sde_name)
            self._models[key] = target.model(sde)
        return self._models[key]

    def reference(self, target_name: str, n: int, seed: int) -> torch.Tensor:
        key = (target_name, n, seed)
        if key not in self._refs:
            self._refs[key] = reference_set(self.targets[target_name], n, seed)
        return self._refs[key]

    def score(self, target_name: str, samples: torch.Tensor, reference: torch.Tensor) -> tuple[dict, dict]:
        """Every metric of samples against reference: (values, errors); None where it does not apply (no exact
        log-density, or a ``sample_shape`` the metric declares that the samples do not have)."""
        target = self.targets[target_name]
        values, errors = {}, {}
        for name, info in self.metrics.items():
            kwargs = {}
            shape = info.info.get("sample_shape")   # a metric for one kind of data (e.g. 8x8 digits)
            if shape is not None and tuple(shape) != tuple(samples.shape[1:]):
                values[name] = None
                continue
            if info.info.get("needs_log_prob"):
                if not getattr(target, "exact", False) or getattr(target, "log_prob", None) is None:
                    values[name] = None
                    continue
                kwargs["log_prob"] = target.log_prob
            try:
                value = float(info.factory(samples, reference, **kwargs))
                values[name] = value if math.isfinite(value) else None
                if not math.isfinite(value):
                    errors[name] = f"metric returned {value}"
            except Exception as exc:  # a broken metric plugin must not lose the cell
                values[name], errors[name] = None, f"{type(exc).__name__}: {exc}"
        return values, errors


def run_floor(cell: FloorCell, ctx: BenchContext) -> dict:
    target = ctx.targets[cell.target]
    try:
        ref = ctx.reference(cell.target, cell.num_samples, cell.seed)
        others = [floor_set(target, cell.num_samples, cell.seed + FLOOR_REPEAT_STRIDE * k) for k in range(cell.repeats)]
    except Exception as exc:  # a target that cannot give reference sets fails its cells, not the run
        return {"status": "failed", "error": _error(exc)}
    scored = [ctx.score(cell.target, other, ref) for other in others]
    values = {m: _mean_or_none([v[m] for v, _ in scored]) for m in scored[0][0]}
    errors = scored[0][1]
    return {"status": "ok", "metrics": values, **({"metric_errors": errors} if errors else {})}


def _mean_or_none(values: list) -> float | None:
    return None if any(v is None for v in values) else sum(values) / len(values)


def _error(exc: BaseException) -> str:
    where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    at = f" (at {where[0].filename.rsplit('/', 1)[-1]}:{where[0].lineno})" if where else ""
    return f"{type(exc).__name__}: {exc}{at}"


def run_cell(cell: Cell, ctx: BenchContext) -> dict:
    factory = ctx.registry.get("solver", cell.solver).factory
    try:
        solver = build_solver(factory, cell.solver, cell.solver_options)
        model = ctx.model(cell.target, cell.sde)
    except Exception as exc:
        return {"status": "failed", "error": _error(exc)}
    try:
        solver.check_sde(model.sde)
        if not solver.capabilities().adaptive:
            solver.steps_for(cell.nfe)
    except SolverError as exc:
        return {"status": "skipped", "reason": str(exc)}
    dtype = getattr(torch, cell.dtype)
    try:
        res = sample(model, solver=solver, nfe=cell.nfe, num_samples=cell.num_samples, seed=cell.seed,
                     progress=False, dtype=dtype)
    except Exception as exc:
        return {"status": "failed", "error": _error(exc)}
    out = {"nfe_spent": int(res.nfe), "seconds": round(res.seconds, 4)}
    if not torch.isfinite(res.samples).all():
        return {"status": "failed", "error": "the samples hold NaN/Inf", **out}
    if not solver.capabilities().adaptive and res.nfe > cell.nfe:
        return {"status": "failed", "error": f"spent {res.nfe} network calls, over its budget of {cell.nfe}", **out}
    try:
        ref = ctx.reference(cell.target, cell.num_samples, cell.seed)
    except Exception as exc:
        return {"status": "failed", "error": _error(exc), **out}
    values, errors = ctx.score(cell.target, res.samples, ref)
    return {"status": "ok", **out, "metrics": values, **({"metric_errors": errors} if errors else {})}


def plugin_of(registry, cell) -> str | None:
    return registry.get("solver", cell.solver).plugin if isinstance(cell, Cell) else None


def run_cells(cells: list, ctx: BenchContext, store: ResultsStore, progress: bool = True,
              retry_failed: bool = False) -> dict:
    """Run the cells not yet in the store; return counts of what this call did."""
    done = store.records
    todo = [c for c in cells if c.key not in done or (retry_failed and done[c.key].get("status") == "failed")]
    counts = {"ok": 0, "failed": 0, "skipped": 0, "already_done": len(cells) - len(todo)}
    bar = tqdm(total=len(cells), initial=len(cells) - len(todo), desc="bench", unit="cell", disable=not progress)
    try:
        for cell in todo:
            bar.set_postfix_str(_describe(cell), refresh=False)
            start = time.perf_counter()
            result = run_floor(cell, ctx) if isinstance(cell, FloorCell) else run_cell(cell, ctx)
            record = {"key": cell.key, **_fields(cell), "plugin": plugin_of(ctx.registry, cell), **result,
                      "wall_seconds": round(time.perf_counter() - start, 4)}
            store.append(record)
            counts[record["status"]] += 1
            bar.update(1)
    finally:
        bar.close()
    return counts


def _fields(cell) -> dict:
    return {k: v for k, v in vars(cell).items()}


def _describe(cell) -> str:
    if isinstance(cell, FloorCell):
        return f"{cell.target} floor seed {cell.seed}"
    budget = f"tol {cell.tol:g}" if cell.tol is not None else f"nfe {cell.nfe}"
    return f"{cell.target}/{cell.sde} {cell.label} {budget} seed {cell.seed}"
