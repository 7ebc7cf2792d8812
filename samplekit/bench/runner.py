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
from dataclasses import dataclass
from typing import Any, cast

import torch
from tqdm.auto import tqdm

from samplekit.bench.flow import FLOW_SOLVER, flow_errors, flow_reference, prior_draw
from samplekit.bench.grid import Cell, FloorCell, FlowRefCell
from samplekit.bench.metrics import fixed_directions
from samplekit.bench.shards import ShardWatch
from samplekit.bench.stats import bootstrap_se, encode_per_sample, per_sample, sw2_bootstrap_se
from samplekit.bench.store import ResultsStore
from samplekit.bench.targets import floor_set, reference_set
from samplekit.sampling import sample
from samplekit.solver import SolverError, build_solver

FLOOR_REPEAT_STRIDE = 1000  # the floor's k-th independent set is drawn with seed + 1000 k
EXPECTED_LOGP_SAMPLES, EXPECTED_LOGP_SEED = 100_000, 987_654  # E_p log p of an exact target


class BenchContext:
    """Built things shared by cells: targets, SDEs, models, reference sets, metrics (all cached)."""

    def __init__(
        self, registry, targets: dict, metrics: list[str], bootstrap: int = 25, primary: str | None = None
    ) -> None:
        self.registry, self.targets = registry, targets
        self.metrics = {m: registry.get("metric", m) for m in metrics}
        self.bootstrap = bootstrap
        self.primary = primary or (metrics[0] if metrics else None)
        self._models: dict = {}
        self._refs: dict = {}
        self._flows: dict = {}
        self._expected_logp: dict = {}

    def flow(self, cell) -> dict:
        """The reference ODE solution for (target, sde, seed, n, dtype, tol), computed once per run."""
        key = (
            cell.target,
            cell.sde,
            cell.seed,
            cell.num_samples,
            cell.dtype,
            cell.flow_tol if isinstance(cell, Cell) else cell.tol,
        )
        if key not in self._flows:
            model = self.model(cell.target, cell.sde)
            x_T = prior_draw(model, cell.num_samples, cell.seed, getattr(torch, cell.dtype))
            self._flows[key] = flow_reference(self.registry, model, x_T, cast(float, key[-1]))
        return self._flows[key]

    def expected_logp(self, target_name: str) -> float | None:
        """E_p log p under the exact target, from EXPECTED_LOGP_SAMPLES exact samples (its own seed)."""
        target = self.targets[target_name]
        if not getattr(target, "exact", False) or getattr(target, "log_prob", None) is None:
            return None
        if target_name not in self._expected_logp:
            x = target.reference(EXPECTED_LOGP_SAMPLES, EXPECTED_LOGP_SEED)
            self._expected_logp[target_name] = float(target.log_prob(x).double().mean())
        return self._expected_logp[target_name]

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

    def score(self, target_name: str, samples: torch.Tensor, reference: torch.Tensor) -> tuple[dict, dict, dict]:
        """Every metric of samples against reference: (values, errors, intervals); a value is None where the
        metric does not apply (no exact log-density or mixture, or made for other data: ``metric_applies``).
        ``intervals`` holds what the report turns into 95% intervals: ``se`` (bootstrap standard errors of
        set distances), ``stats`` ([mean, sd, n] of per-sample quantities) and ``expected_logp``."""
        target = self.targets[target_name]
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        extra: dict[str, Any] = {"se": {}, "stats": {}}
        expected = self.expected_logp(target_name)
        for name, info in self.metrics.items():
            kwargs: dict[str, Any] = {}
            if not metric_applies(info.info, target, samples.shape[1:]):
                values[name] = None
                continue
            if info.info.get("needs_log_prob"):
                if expected is None:
                    values[name] = None
                    continue
                kwargs.update(log_prob=target.log_prob, expected=expected)
            if info.info.get("needs_mixture"):
                if getattr(target, "mixture", None) is None:
                    values[name] = None
                    continue
                kwargs["mixture"] = target.mixture
            try:
                value = float(info.factory(samples, reference, **kwargs))
                values[name] = value if math.isfinite(value) else None
                if not math.isfinite(value):
                    errors[name] = f"metric returned {value}"
                    continue
                self._interval(name, info, samples, reference, kwargs, extra)
            except Exception as exc:  # a broken metric plugin must not lose the cell
                values[name], errors[name] = None, f"{type(exc).__name__}: {exc}"
        if expected is not None and any(i.info.get("needs_log_prob") for i in self.metrics.values()):
            extra["expected_logp"] = expected
        return values, errors, {k: v for k, v in extra.items() if v != {}}

    def _interval(self, name: str, info, samples, reference, kwargs: dict, extra: dict) -> None:
        kind = info.info.get("interval")
        if kind == "bootstrap_sw2":
            dirs = fixed_directions(samples[0].numel(), 256, 0)
            extra["se"][name] = sw2_bootstrap_se(samples, reference, dirs, self.bootstrap)
        elif kind == "bootstrap_mode_tv":
            r = kwargs["mixture"].responsibilities(samples.flatten(1).double())
            w = kwargs["mixture"].weights.double()
            extra["se"][name] = bootstrap_se(
                lambda ix, iy: 0.5 * (r[ix].mean(0) - w).abs().sum(), r.shape[0], 1, self.bootstrap
            )
        elif kind == "per_sample_logp":
            extra["stats"]["logp"] = per_sample(kwargs["log_prob"](samples.flatten(1).double()))
        elif name == self.primary:  # the headline always gets an interval: bootstrap the metric itself
            extra["se"][name] = bootstrap_se(
                lambda ix, iy: info.factory(samples[ix], reference[iy], **kwargs),
                samples.shape[0],
                reference.shape[0],
                self.bootstrap,
            )


def metric_applies(info: dict, target, sample_shape) -> bool:
    """A metric made for one kind of data (``data``, e.g. "digits": the shipped digit classifier's features)
    applies only to the targets of that data (their ``data`` attribute); one with a ``sample_shape`` only to
    samples of that shape.  A user's model has no ``data``, so it never gets them, whatever its shape."""
    data = info.get("data")
    if data is not None and getattr(target, "data", None) != data:
        return False
    shape = info.get("sample_shape")
    return shape is None or tuple(shape) == tuple(sample_shape)


def run_floor(cell: FloorCell, ctx: BenchContext) -> dict:
    target = ctx.targets[cell.target]
    try:
        ref = ctx.reference(cell.target, cell.num_samples, cell.seed)
        others = [floor_set(target, cell.num_samples, cell.seed + FLOOR_REPEAT_STRIDE * k) for k in range(cell.repeats)]
    except Exception as exc:  # a target that cannot give reference sets fails its cells, not the run
        return {"status": "failed", "error": _error(exc)}
    scored = [ctx.score(cell.target, other, ref) for other in others]
    values = {m: _mean_or_none([v[m] for v, _, _ in scored]) for m in scored[0][0]}
    errors = scored[0][1]
    return {"status": "ok", "metrics": values, **({"metric_errors": errors} if errors else {})}


def run_flow_ref(cell: FlowRefCell, ctx: BenchContext) -> dict:
    try:
        ref = ctx.flow(cell)
    except Exception as exc:
        return {"status": "failed", "error": _error(exc)}
    return {
        "status": "ok",
        "metrics": {},
        "nfe_spent": ref["nfe_spent"],
        "seconds": ref["seconds"],
        "ref_dtype": ref["dtype"],
        "solver": FLOW_SOLVER,
    }


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
            solver.plan(cell.nfe)
    except SolverError as exc:
        return {"status": "skipped", "reason": str(exc)}
    dtype = getattr(torch, cell.dtype)
    stochastic = bool(solver.capabilities().stochastic)
    try:
        # deterministic solvers start from the reference solution's x_T (the same draw sample() makes)
        x_T = prior_draw(model, cell.num_samples, cell.seed, dtype) if cell.flow_tol is not None else None
        res = sample(
            model,
            solver=solver,
            nfe=cell.nfe,
            num_samples=cell.num_samples,
            seed=cell.seed,
            progress=False,
            dtype=dtype,
            x_T=x_T,
        )
    except Exception as exc:
        return {"status": "failed", "error": _error(exc)}
    out = {
        "nfe_spent": int(res.nfe),
        "seconds": round(res.seconds, 4),
        "stochastic": stochastic,
        "schedule": None if solver.capabilities().adaptive else getattr(solver, "schedule", None),
    }
    if not torch.isfinite(res.samples).all():
        return {"status": "failed", "error": "the samples hold NaN/Inf", **out}
    if not solver.capabilities().adaptive and res.nfe > cell.nfe:
        return {"status": "failed", "error": f"spent {res.nfe} network calls, over its budget of {cell.nfe}", **out}
    try:
        ref = ctx.reference(cell.target, cell.num_samples, cell.seed)
    except Exception as exc:
        return {"status": "failed", "error": _error(exc), **out}
    values, errors, extra = ctx.score(cell.target, res.samples, ref)
    if cell.flow_tol is not None:
        try:
            e = flow_errors(res.samples, ctx.flow(cell)["samples"])
            values["flow_error"] = float(e.mean())
            extra.setdefault("stats", {})["flow_error"] = per_sample(e)
            extra["paired"] = {"flow_error": encode_per_sample(e)}
        except Exception as exc:
            values["flow_error"], errors["flow_error"] = None, _error(exc)
    return {"status": "ok", **out, "metrics": values, **extra, **({"metric_errors": errors} if errors else {})}


def plugin_of(registry, cell) -> str | None:
    return registry.get("solver", cell.solver).plugin if isinstance(cell, Cell) else None


def pending(cells: list, done: dict, retry_failed: bool = False) -> list:
    """The cells still to run: not in ``done`` (or recorded as failed, with ``retry_failed``)."""
    return [c for c in cells if c.key not in done or (retry_failed and done[c.key].get("status") == "failed")]


@dataclass
class Progress:
    """What the progress bar shows: the whole run (``total`` cells, ``initial`` already done), this rank's
    cells plus the records that ``watch`` sees the other ranks write (``others`` of them expected)."""

    total: int
    initial: int
    desc: str = "bench"
    watch: ShardWatch | None = None
    others: int = 0
    stall_seconds: float = 600.0  # stop waiting for the other ranks' lines after this long without one


def run_cells(
    cells: list,
    ctx: BenchContext,
    store: ResultsStore,
    progress: bool = True,
    retry_failed: bool = False,
    done: dict | None = None,
    shown: Progress | None = None,
) -> dict:
    """Run the cells not yet done (in ``done``, default the store's records); return counts of this call."""
    done = store.records if done is None else done
    todo = pending(cells, done, retry_failed)
    counts = {"ok": 0, "failed": 0, "skipped": 0, "already_done": len(cells) - len(todo)}
    shown = shown or Progress(len(cells), len(cells) - len(todo))
    bar = tqdm(total=shown.total, initial=shown.initial, desc=shown.desc, unit="cell", disable=not progress)
    ran = 0

    def refresh() -> int:
        others = shown.watch.new_records() if shown.watch is not None else 0
        bar.n = min(shown.total, shown.initial + ran + others)
        bar.refresh()
        return others

    try:
        for cell in todo:
            bar.set_postfix_str(_describe(cell), refresh=False)
            start = time.perf_counter()
            run = (
                run_floor
                if isinstance(cell, FloorCell)
                else run_flow_ref
                if isinstance(cell, FlowRefCell)
                else run_cell
            )
            result = run(cell, ctx)
            record = {
                "key": cell.key,
                **_fields(cell),
                "plugin": plugin_of(ctx.registry, cell),
                **result,
                "wall_seconds": round(time.perf_counter() - start, 4),
            }
            store.append(record)
            counts[record["status"]] += 1
            ran += 1
            refresh()
        if shown.watch is not None and progress:  # this rank is done: follow the others to the end
            seen, since = refresh(), time.monotonic()
            if seen < shown.others:
                bar.set_postfix_str("waiting for the other ranks")
            while seen < shown.others and time.monotonic() - since < shown.stall_seconds:
                time.sleep(1.0)
                now = refresh()
                if now > seen:
                    seen, since = now, time.monotonic()
    finally:
        bar.close()
    return counts


def _fields(cell) -> dict:
    return {k: v for k, v in vars(cell).items()}


def _describe(cell) -> str:
    if isinstance(cell, FloorCell):
        return f"{cell.target} floor seed {cell.seed}"
    if isinstance(cell, FlowRefCell):
        return f"{cell.target}/{cell.sde} reference ODE solve seed {cell.seed}"
    budget = f"tol {cell.tol:g}" if cell.tol is not None else f"nfe {cell.nfe}"
    return f"{cell.target}/{cell.sde} {cell.label} {budget} seed {cell.seed}"
