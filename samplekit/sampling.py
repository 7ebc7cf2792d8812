"""``sample()``: draw x_T from the prior and run a solver down to t_min, counting every network call."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm

from samplekit.noise import NoiseSource
from samplekit.plugins import get_registry
from samplekit.score import NonFiniteError, ScoreModel
from samplekit.solver import Solver, SolverError, StepInfo, build_solver

Tensor = torch.Tensor


@dataclass
class SampleResult:
    """Samples at t_min (or denoised, if asked), the network calls spent, wall time, and the grid."""

    samples: Tensor
    nfe: int
    seconds: float
    solver: str
    n_steps: int | None = None
    ts: Tensor | None = None
    options: dict = field(default_factory=dict)


def resolve_solver(solver: str | Solver, options: dict) -> Solver:
    if isinstance(solver, Solver):
        if options:
            raise SolverError(f"solver options {sorted(options)} were given with a Solver instance; "
                              "set them when building it, or pass the solver by name")
        return solver
    if not isinstance(solver, str):
        raise TypeError(f"solver={solver!r} must be a registered name (see `samplekit list solver`) or a Solver")
    info = get_registry().get("solver", solver)
    return build_solver(info.factory, solver, options)


def make_grid(solver: Solver, model: ScoreModel, n_steps: int) -> Tensor:
    schedule = get_registry().get("schedule", solver.schedule).factory
    ts = schedule(model.sde, n_steps, **solver.schedule_options)
    if ts.shape != (n_steps + 1,) or not bool((ts[1:] < ts[:-1]).all()):
        raise SolverError(f"schedule {solver.schedule!r} returned a grid that is not strictly decreasing "
                          f"with {n_steps + 1} points")
    return ts


def _check_budget(nfe) -> int:
    if isinstance(nfe, bool) or not isinstance(nfe, int) or nfe < 1:
        raise ValueError(f"nfe={nfe!r} must be a positive integer number of network evaluations")
    return nfe


DEFAULT_NFE = 100            # a fixed-step solver's budget when none is given
DEFAULT_ADAPTIVE_CAP = 10_000  # an adaptive solver's cap when none is given (its tolerances set the cost)


def sample(model: ScoreModel, solver: str | Solver = "euler_maruyama", nfe: int | None = None, num_samples: int = 1000,
           seed: int | Sequence[int] | None = 0, progress: bool = True,
           callback: Callable[[StepInfo], None] | None = None, x_T: Tensor | None = None,
           dtype: torch.dtype | None = None, device=None, **solver_options) -> SampleResult:
    """Sample ``num_samples`` points with ``solver`` spending at most ``nfe`` network calls.

    ``seed`` is an int or one int per sample (each sample then the same whatever batch it is in).
    ``x_T`` replaces the prior draw; ``dtype``/``device`` default to x_T's, else float32 on CPU.
    Adaptive solvers treat ``nfe`` as a cap and report what they spent.  ``nfe=None`` means
    ``DEFAULT_NFE`` (100) for a fixed-step solver and a cap of ``DEFAULT_ADAPTIVE_CAP`` for an adaptive one.
    """
    if not isinstance(model, ScoreModel):
        raise TypeError(f"model={model!r} is not a ScoreModel; wrap a network with sk.ScoreModel.from_eps(...) "
                        "or load one with sk.load_model(...)")
    if nfe is not None:
        _check_budget(nfe)
    num_samples = x_T.shape[0] if x_T is not None else num_samples
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples={num_samples!r} must be a positive integer")
    solver = resolve_solver(solver, solver_options)
    if nfe is None:
        nfe = DEFAULT_ADAPTIVE_CAP if solver.capabilities().adaptive else DEFAULT_NFE
    solver.check_sde(model.sde)
    # a wrapped model (guidance) may make several network calls per evaluation: plan evaluations
    per_eval = int(getattr(model, "nfe_per_eval", 1))
    if per_eval > 1 and not solver.capabilities().adaptive and nfe < per_eval:
        raise SolverError(f"nfe={nfe} is too small: model {model.name!r} makes {per_eval} network calls "
                          f"per evaluation; raise nfe")
    n_steps = None if solver.capabilities().adaptive else solver.steps_for(nfe // per_eval)
    if x_T is not None:
        model.check_input(x_T, model.sde.T, argument="x_T")
        dtype, device = x_T.dtype, x_T.device
    dtype = dtype or torch.float32
    noise = NoiseSource(seed, num_samples, device=device)
    x = x_T if x_T is not None else model.sde.prior_std * noise.randn(model.shape, dtype=dtype)

    start_nfe, start = model.nfe, time.perf_counter()
    ts = None
    if solver.capabilities().adaptive:
        x = solver.solve(model, x, noise, max_nfe=nfe)
        _check_finite(x, f"solver {solver.name!r} returned NaN/Inf")
    else:
        ts = make_grid(solver, model, n_steps)
        x = integrate(solver, model, x, ts, noise, progress=progress, callback=callback)
    if solver.denoise_final:
        x = model.denoise(x, model.sde.t_min)
    spent = model.nfe - start_nfe
    return SampleResult(x, spent, time.perf_counter() - start, solver.name, n_steps, ts, solver.options())


def integrate(solver: Solver, model: ScoreModel, x: Tensor, ts: Tensor, noise: NoiseSource,
              progress: bool = False, callback: Callable[[StepInfo], None] | None = None) -> Tensor:
    """Walk the grid ts with the solver's step; check every step for NaN/Inf; report to the callback."""
    n = len(ts) - 1
    state = solver.init(model, x, ts, noise)
    steps = tqdm(range(n), desc=solver.name, disable=not progress, leave=False)
    for i in steps:
        t0, t1 = ts[i], ts[i + 1]
        where = f"step {i} of {n} (t={float(t0):g} -> {float(t1):g}) of solver {solver.name!r}"
        try:
            x, state, denoised = solver.step(model, i, t0, t1, x, state, noise)
        except NonFiniteError as exc:
            raise NonFiniteError(f"{where}: {exc}") from None
        _check_finite(x, f"{where} produced NaN/Inf; use more steps or a more stable solver")
        if callback is not None:
            callback(StepInfo(i, n, float(t0), float(t1), x, denoised, model.nfe))
    return x


def _check_finite(x: Tensor, message: str) -> None:
    if not torch.isfinite(x).all():
        raise NonFiniteError(message)
