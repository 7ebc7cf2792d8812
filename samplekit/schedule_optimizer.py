"""``optimize_schedule``: a time grid fitted to one model, one solver and one budget.

What is minimised.  For a deterministic solver S run on the grid T = t_0 > t_1 > ... > t_n = t_min,
its global error against the probability-flow ODE's exact map Phi (the teacher, from a batch of x_T):

    L(t_1..t_{n-1}) = E_{x_T ~ prior} || S_grid(x_T) - Phi_{T -> t_min}(x_T) ||^2 / d,

Phi computed by dopri5 at rtol = atol = ``teacher_tol`` (``samplekit.likelihood.decode``).  For a
stochastic solver (``capabilities().stochastic``) there is no pathwise teacher, so L is its own
distributional error: the sliced Wasserstein-2^2 between its samples (noise fixed by ``seed``: common
random numbers across grids) and the teacher's end points (which are samples of the model's p_{t_min}),
over ``n_projections`` fixed directions.

How.  GITS (Chen et al. 2024, "On the trajectory regularity of ODE-based diffusion sampling",
the geometric-perspective line of Chen et al.) picks the grid by a dynamic programme over a fine
candidate grid, cost(t_j -> t_k) = the solver's one-step error from the teacher state at t_j, which
assumes the error is a sum of one-step errors each independent of the path.  That holds for Euler /
DDIM; for multistep solvers (dpmpp_2m/3m, unipc, deis, ipndm, lms) a step's error depends on which
earlier points were chosen, and a stochastic solver has no one-step pathwise error at all.  Here the
global error L is minimised directly, so every solver is judged by what it will actually produce:

1. start: L on each candidate schedule (``starts``: the solver's default, uniform, karras, logsnr,
   kl_optimal by default); the best is the starting grid, so the result is never worse on the batch
   than any of them;
2. coordinate descent: each interior time t_i in turn is moved toward t_{i-1} or t_{i+1} by a fraction
   f of the gap (the order is kept by construction); a move is kept if it lowers L; f starts at 1/4
   and halves after a sweep with no improvement, until f < ``min_fraction`` or the budget is spent.

Cost: one evaluation of L spends ``nfe`` network calls on the batch (``num_samples`` points, one
batched call each); the teacher spends what dopri5 needs (~100-300).  ``max_nfe`` bounds the total
(network calls counted at the model, teacher included); the descent stops before exceeding it.
``return_report=True`` returns ``(grid, ScheduleReport)`` with the calls spent.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from samplekit.checks import positive_int
from samplekit.errors import InvalidArgumentError
from samplekit.plugins import get_registry
from samplekit.score import ScoreModel
from samplekit.solver import Solver, SolverError

Tensor = torch.Tensor

TEACHER_MIN_NFE = 8  # dopri5's fewest calls: one + 6 a step (FSAL), two steps at least
DEFAULT_STARTS = ("uniform", "karras", "logsnr", "kl_optimal")


@dataclass
class ScheduleReport:
    """What the optimizer found and spent: the grid, its loss, the best starting schedule and its loss,
    network calls (``nfe_spent``, teacher included), evaluations of L, and the objective's name."""

    ts: Tensor
    loss: float
    start: str
    start_loss: float
    nfe_spent: int
    evaluations: int
    objective: str
    seconds: float
    start_losses: dict = field(default_factory=dict)


def _resolve(solver) -> Solver:
    from samplekit.solver import resolve_solver

    return resolve_solver(solver, {})


def _check_starts(starts) -> tuple[str, ...]:
    """Every start a registered schedule name (a misspelt one would be skipped silently)."""
    if isinstance(starts, str):
        starts = (starts,)
    registry = get_registry()
    for name in starts:
        registry.get("schedule", name)  # unknown: UnknownComponentError listing close names
    return tuple(starts)


def optimize_schedule(
    model: ScoreModel,
    solver: str | Solver,
    nfe: int,
    num_samples: int = 256,
    seed: int = 0,
    max_nfe: int | None = None,
    starts=DEFAULT_STARTS,
    min_fraction: float = 1 / 64,
    teacher_tol: float = 1e-6,
    n_projections: int = 64,
    return_report: bool = False,
):
    """A strictly decreasing float64 grid (T ... t_min) for ``solver`` at budget ``nfe`` on ``model``.

    :param solver: a registered fixed-step solver name or a Solver instance (its options are kept).
    :param nfe: the budget the grid is for (steps = ``solver.plan(nfe).n_steps``).
    :param num_samples, seed: the batch of x_T (and the stochastic solver's noise) the loss is taken on.
    :param max_nfe: cap on network calls spent optimising, the dopri5 teacher's included (default
        200 x nfe + 400); one too small for the teacher and one grid is refused.
    :param starts: schedule names tried as starting grids (the solver's default schedule is added).
    :param min_fraction: stop when the move fraction of the gap falls below this.
    :param teacher_tol: rtol = atol of the dopri5 teacher.
    :param return_report: also return a :class:`ScheduleReport`.
    """
    from samplekit.likelihood import decode
    from samplekit.sampling import sample
    from samplekit.timegrid import make_grid

    if not isinstance(model, ScoreModel):
        raise InvalidArgumentError(f"model={model!r} must be a ScoreModel (e.g. target.score_model(sde))")
    solver = _resolve(solver)
    caps = solver.capabilities()
    if caps.adaptive:
        raise SolverError(
            f"solver {solver.name!r} is adaptive: it picks its own steps, so it has no grid to optimise; "
            "pass a fixed-step solver"
        )
    nfe = positive_int(nfe, "nfe", "a positive integer number of network evaluations (the grid's budget)")
    starts = _check_starts(starts)
    n_steps = solver.plan(nfe).n_steps
    num_samples = int(num_samples)
    if num_samples < 2:
        raise InvalidArgumentError(f"num_samples={num_samples} must be at least 2 (the loss is a batch mean)")
    budget = 200 * nfe + 400 if max_nfe is None else positive_int(max_nfe, "max_nfe")
    if budget < nfe + TEACHER_MIN_NFE:
        raise InvalidArgumentError(
            f"max_nfe={max_nfe} cannot pay for the dopri5 teacher (at least {TEACHER_MIN_NFE} calls) and one "
            f"grid at nfe={nfe}; raise max_nfe well above {nfe + TEACHER_MIN_NFE}, or drop it"
        )
    if not 0 < min_fraction < 0.5:
        raise InvalidArgumentError(f"min_fraction={min_fraction} must be in (0, 0.5), e.g. 1/64")
    start_time = time.perf_counter()
    sde = model.sde
    nfe0 = model.nfe
    gen = torch.Generator().manual_seed(int(seed))
    x_T = sde.prior_sample((num_samples, *model.shape), generator=gen, dtype=torch.float64)
    target = decode(model, x_T, rtol=teacher_tol, atol=teacher_tol)
    d = target[0].numel()
    stochastic = caps.stochastic
    if stochastic:
        proj = torch.randn(d, n_projections, generator=gen, dtype=torch.float64)
        proj = proj / proj.norm(dim=0, keepdim=True)
        ref = torch.sort(target.reshape(num_samples, -1) @ proj, dim=0).values
    evaluations = 0
    if model.nfe - nfe0 + nfe > budget:
        raise SolverError(
            f"max_nfe={budget} is spent: the dopri5 teacher took {model.nfe - nfe0} calls, leaving too few for "
            f"one grid at nfe={nfe}; raise max_nfe to at least {model.nfe - nfe0 + nfe} (more to search)"
        )

    def loss(ts: Tensor) -> float:
        nonlocal evaluations
        evaluations += 1
        out = sample(model, solver, x_T=x_T, ts=ts, seed=int(seed), progress=False).samples.reshape(num_samples, -1)
        if stochastic:
            return float(((torch.sort(out @ proj, dim=0).values - ref) ** 2).mean())
        return float(((out - target.reshape(num_samples, -1)) ** 2).sum(1).mean() / d)

    def spent() -> int:
        return model.nfe - nfe0

    names = [s for s in dict.fromkeys([solver.schedule, *starts]) if s != "optimized"]
    start_losses = {}
    best_ts, best, best_name = None, math.inf, None
    for name in names:
        if spent() + nfe > budget:
            break
        probe = _with_schedule(solver, name)
        try:
            ts = make_grid(probe, model, n_steps)
        except Exception:  # a schedule that cannot serve this SDE / step count is skipped
            continue
        value = loss(ts)
        start_losses[name] = value
        if value < best:
            best_ts, best, best_name = ts, value, name
    if best_ts is None:
        raise SolverError(f"none of the starting schedules {names} gave a grid of {n_steps} steps on {sde!r}")
    start_loss = best
    ts = best_ts.clone()
    fraction = 0.25
    while fraction >= min_fraction and spent() + nfe <= budget:
        improved = False
        for i in range(1, n_steps):
            for toward in (i - 1, i + 1):
                if spent() + nfe > budget:
                    break
                trial = ts.clone()
                trial[i] = ts[i] + fraction * (ts[toward] - ts[i])
                if not bool((trial[1:] < trial[:-1]).all()):
                    continue
                value = loss(trial)
                if value < best:
                    ts, best, improved = trial, value, True
                    break
        if not improved:
            fraction /= 2
    report = ScheduleReport(
        ts,
        best,
        str(best_name),
        start_loss,
        spent(),
        evaluations,
        "sliced W2^2 vs teacher samples" if stochastic else "MSE vs probability-flow ODE",
        time.perf_counter() - start_time,
        start_losses,
    )
    return (ts, report) if return_report else ts


def _with_schedule(solver: Solver, schedule: str) -> Solver:
    """A shallow copy of the solver that uses ``schedule`` (its own schedule options dropped)."""
    import copy

    probe = copy.copy(solver)
    probe.schedule = schedule
    probe.schedule_options = {}
    return probe
