"""``sample()``: draw x_T from the prior (or noise x_start to t_start) and run a solver down to t_min,
counting every network call; no autograd graph unless ``grad=True``."""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from samplekit import finite, requests
from samplekit.checks import check_sample_args
from samplekit.errors import (
    ArgumentTypeError,
    BudgetExceededError,
    InvalidArgumentError,
    PluginSolverError,
    SamplekitError,
)
from samplekit.fitted import FittedSampler, resolve_fitted
from samplekit.metering import metered
from samplekit.noise import NoiseSource
from samplekit.score import NonFiniteError, ScoreModel
from samplekit.solver import Plan, Solver, SolverError, StepInfo, resolve_solver
from samplekit.timegrid import check_user_grid, ends_at_zero, make_grid  # noqa: F401  (make_grid: imported too)

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
    decoded: Tensor | None = None  # the decoder's images of the samples (latent models), else None


DEFAULT_NFE = 100  # a fixed-step solver's budget when none is given
DEFAULT_ADAPTIVE_CAP = 10_000  # an adaptive solver's cap when none is given (its tolerances set the cost)


def sample(
    model: ScoreModel,
    solver: str | Solver | FittedSampler = "euler_maruyama",
    nfe: int | None = None,
    num_samples: int | None = None,
    seed: int | Sequence[int] | None = 0,
    progress: bool = True,
    callback: Callable[[StepInfo], None] | None = None,
    x_T: Tensor | None = None,
    dtype: torch.dtype | None = None,
    device=None,
    ts: Tensor | None = None,
    x_start: Tensor | None = None,
    t_start: float | None = None,
    grad: bool = False,
    batch_size: int | None = None,
    **solver_options,
) -> SampleResult:
    """Sample ``num_samples`` points with ``solver`` spending at most ``nfe`` network calls.

    ``seed`` is an int or one int per sample (each sample then the same whatever batch it is in).
    ``solver`` may be a fitted sampler of ``sk.fit_solver`` (its solver, grid and budget; refused for another
    model, SDE or nfe).  ``x_T`` replaces the prior draw; ``dtype``/``device`` default to x_T's, else float32 on CPU.
    Adaptive solvers treat ``nfe`` as a cap and report what they spent.  ``nfe=None`` means
    ``DEFAULT_NFE`` (100) for a fixed-step solver (or what the grid ``ts`` needs) and a cap of
    ``DEFAULT_ADAPTIVE_CAP`` for an adaptive one.

    ``ts``: a strictly decreasing 1-D tensor of model times in [t_min, T], used as given (``res.ts`` is
    it): x is drawn at ts[0] (from the prior, or ``x_T``) and integrated to ts[-1].
    ``x_start``, ``t_start`` (img2img / SDEdit, Meng et al. 2022): x = alpha_t x_start + sigma_t z at
    t = t_start (z from the seeded noise), then integrated from t_start down, on the solver's schedule
    over [t_min, t_start] (or on ``ts``, whose first time must be t_start).
    ``grad``: record the autograd graph (to differentiate through the sampler); by default none is
    recorded (wrappers that need input gradients turn them on locally).
    ``batch_size``: draw at most this many samples at a time (bounded memory; see ``chunks.sample_in_chunks``):
    per-sample inputs, seeds, ``x_T`` and ``x_start`` are sliced with their samples and the chunks'
    samples concatenated; with one seed per sample the set is the same whatever ``batch_size``.

    The step loop does not synchronise with the host: NaN/Inf and out-of-range times are noted in a
    device-side flag read once at the end (``finite.py``), which recorded the first bad step and its t.
    """
    if isinstance(solver, FittedSampler):  # sk.fit_solver's result: its solver and grid set the calls
        solver, ts = resolve_fitted(model, solver, nfe, ts, solver_options)
        nfe = None
    with torch.set_grad_enabled(bool(grad)):
        if batch_size is not None:
            from samplekit.chunks import sample_in_chunks

            return sample_in_chunks(
                model,
                batch_size,
                solver=solver,
                nfe=nfe,
                num_samples=num_samples,
                seed=seed,
                progress=progress,
                callback=callback,
                x_T=x_T,
                dtype=dtype,
                device=device,
                ts=ts,
                x_start=x_start,
                t_start=t_start,
                grad=grad,
                **solver_options,
            )
        return _sample(
            model,
            solver,
            nfe,
            num_samples,
            seed,
            progress,
            callback,
            x_T,
            dtype,
            device,
            ts,
            x_start,
            t_start,
            solver_options,
        )


def _sample(
    model, solver, nfe, num_samples, seed, progress, callback, x_T, dtype, device, ts, x_start, t_start, solver_options
) -> SampleResult:
    if not isinstance(model, ScoreModel):
        raise ArgumentTypeError(
            f"model={model!r} is not a ScoreModel; wrap a network with sk.ScoreModel.from_eps(...) "
            "or load one with sk.load_model(...)"
        )
    nfe, num_samples, seed, dtype = check_sample_args(nfe, num_samples, seed, dtype, x_T, x_start)
    device = requests.check_device(device)
    requests.check_callback(callback)
    requests.check_grid_and_schedule(ts, solver_options)
    sde = model.sde
    t_start = _check_start(model, x_start, t_start, x_T)
    solver = resolve_solver(solver, solver_options)
    caps = solver.capabilities()
    solver.check_sde(sde)
    if ts is not None:
        checked = check_user_grid(ts, sde, final_zero=True)
        ts_given = ts if isinstance(ts, Tensor) else checked
        ts = checked.to(torch.float64)
        if caps.adaptive:
            raise SolverError(
                f"ts= was given but solver {solver.name!r} is adaptive and chooses its own steps; "
                "use a fixed-step solver with ts=, or drop ts"
            )
        if t_start is not None and abs(float(ts[0]) - t_start) > 1e-9 * sde.T:
            raise InvalidArgumentError(
                f"ts[0]={float(ts[0]):g} must equal t_start={t_start:g}: the grid starts where x_start "
                "is noised to; pass a grid from t_start down, or drop t_start"
            )
    # a wrapped model (guidance) may make several network calls per evaluation: plan evaluations
    per_eval = int(getattr(model, "nfe_per_eval", 1))
    if ts is not None:
        plan = _plan_for_grid(solver, ts, per_eval, nfe)
    else:
        if nfe is None:
            nfe = DEFAULT_ADAPTIVE_CAP if caps.adaptive else DEFAULT_NFE
        if per_eval > 1 and not caps.adaptive and nfe < per_eval:
            raise SolverError(
                f"nfe={nfe} is too small: model {model.name!r} makes {per_eval} network calls per evaluation; raise nfe"
            )
        plan = solver.plan(nfe, per_eval)
    n_steps: int | None = None if caps.adaptive else plan.n_steps if ts is None else len(ts) - 1
    model.check_inputs(num_samples)
    if x_T is not None:
        model.check_input(x_T, sde.T if ts is None else ts[0], argument="x_T")
        dtype, device = x_T.dtype, x_T.device
    if x_start is not None:
        model.check_input(x_start, t_start, argument="x_start")
        dtype, device = x_start.dtype, x_start.device
    dtype = dtype or torch.float32
    requests.check_size(num_samples, model.shape, dtype, device, n_steps)

    noise = NoiseSource(seed, num_samples, device=device)
    if x_start is not None:
        alpha, sigma = sde.marginal(torch.tensor(t_start, dtype=torch.float64))
        x = float(alpha) * x_start + float(sigma) * noise.randn(model.shape, dtype=dtype)
    else:
        x = x_T if x_T is not None else sde.prior_std * noise.randn(model.shape, dtype=dtype)
    start_nfe, start = model.nfe, time.perf_counter()
    if caps.adaptive:  # adaptive step control reads the error on the host anyway: checks stay immediate
        run_model = model if t_start is None else _started_at(model, t_start)
        final = per_eval if solver.denoise_final else 0  # the cap keeps one evaluation for the final denoise
        fix = "loosen the tolerances or raise nfe"
        x = _solve(
            solver, metered(run_model, plan.nfe - final, _owner(solver), fix), x, noise, plan, progress, callback
        )
        _check_finite(x, lambda _: f"solver {solver.name!r} returned NaN/Inf")
        if solver.denoise_final:
            x = metered(run_model, final, "the final denoise").denoise(x, sde.t_min)
    else:
        if ts is None:
            ts = ts_given = make_grid(solver, model, plan.n_steps, t_max=t_start)
        x = run_grid(solver, model, x, ts, noise, plan, progress, callback)  # after the grid (an optimized one calls)
        ts = ts_given
    spent = model.nfe - start_nfe
    decoded = None
    if model.decoder is not None:
        with torch.no_grad():
            decoded = model.decoder(x)
    return SampleResult(
        x,
        spent,
        time.perf_counter() - start,
        solver.name,
        n_steps,
        ts if not caps.adaptive else None,
        solver.options(),
        decoded,
    )


def _check_start(model: ScoreModel, x_start, t_start, x_T) -> float | None:
    """t_start as a float, after checking that x_start and t_start come together (and without x_T)."""
    if x_start is None and t_start is None:
        return None
    if x_start is None or t_start is None:
        missing = "t_start" if t_start is None else "x_start"
        raise InvalidArgumentError(
            f"img2img needs both x_start (the images) and t_start (the time to noise them to); {missing} is missing"
        )
    if x_T is not None:
        raise InvalidArgumentError(
            "x_T and x_start were both given; x_start is noised to t_start and replaces the prior draw: "
            "pass one of them"
        )
    try:
        t = float(t_start)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"t_start={t_start!r} must be a model time in (t_min, T]") from None
    sde = model.sde
    if not (sde.t_min < t <= sde.T) or not math.isfinite(t):
        raise InvalidArgumentError(
            f"t_start={t_start!r} must lie in (t_min, T] = ({sde.t_min:g}, {sde.T:g}] of {sde!r}; "
            "larger t_start keeps less of x_start"
        )
    return t


def run_grid(
    solver: Solver,
    model: ScoreModel,
    x: Tensor,
    ts: Tensor,
    noise: NoiseSource,
    plan: Plan,
    progress: bool = False,
    callback: Callable[[StepInfo], None] | None = None,
) -> Tensor:
    """A fixed-step solver over the checked grid ts (and its ``denoise_final``) on the model metered to
    ``plan.nfe``, with the finiteness checks deferred to one host synchronisation at the end."""
    fix = f"it spends more than its plan of {plan.n_steps} steps allows (its nfe_per_step or plan() is wrong)"
    run_model = metered(model, plan.nfe, _owner(solver), fix)
    with finite.deferred() as flag:
        try:
            x = integrate(solver, run_model, x, ts, noise, progress=progress, callback=callback, plan=plan)
            if solver.denoise_final:
                x = run_model.denoise(x, ts[-1])
        except Exception:
            flag.raise_first()  # NaN carried on may break a solver later: name the first bad step
            raise
        flag.raise_first()  # the loop's one host synchronisation
    return x


def grid_plan(solver: Solver, ts: Tensor, calls_per_eval: int = 1) -> Plan:
    """The plan for a grid given as is: ``solver.plan_for_grid`` of the steps the solver takes, and one
    evaluation more for a final step onto 0 that the core takes (``step_to_zero``)."""
    n_steps = len(ts) - 1
    if solver.denoise_final and ends_at_zero(ts):
        raise SolverError(
            "denoise_final=True with ts ending at 0: the last step already lands on the data (sigma = 0); "
            "drop denoise_final, or end ts at t_min"
        )
    if not ends_at_zero(ts) or solver.steps_to_zero:
        return solver.plan_for_grid(n_steps, calls_per_eval)
    if n_steps == 1:
        return Plan(0, calls_per_eval, calls_per_eval)
    plan = solver.plan_for_grid(n_steps - 1, calls_per_eval)
    return dataclasses.replace(plan, nfe=plan.nfe + calls_per_eval)


def _plan_for_grid(solver: Solver, ts: Tensor, per_eval: int, nfe: int | None) -> Plan:
    """The plan for a user grid; a clear error if it needs more than nfe.  Its cap is nfe, if given."""
    n_steps = len(ts) - 1
    plan = grid_plan(solver, ts, per_eval)
    if nfe is None:
        return plan
    if plan.nfe > nfe:
        caps = solver.capabilities()
        raise SolverError(
            f"nfe={nfe} is too small for ts with {n_steps} steps: solver {solver.name!r} spends "
            f"{caps.nfe_per_step} call(s) a step x {per_eval} per evaluation"
            f"{' + 1 for denoise_final' if solver.denoise_final else ''} = {plan.nfe}; raise nfe to {plan.nfe} "
            "or pass nfe=None"
        )
    return dataclasses.replace(plan, nfe=nfe)


def _owner(solver: Solver) -> str:
    """'solver NAME (plugin PLUGIN)', for error messages."""
    return f"solver {solver.name!r} ({_origin(solver)})"


def _origin(solver: Solver) -> str:
    """'plugin PLUGIN' (the plugin that registered the solver's class), else its class's dotted name."""
    from samplekit.plugins import get_registry  # the registry loads the plugins, which import this module

    for info in get_registry().available("solver"):
        if info.factory is type(solver):
            return f"plugin {info.plugin!r}"
    cls = type(solver)
    return f"class {cls.__module__}.{cls.__qualname__}"


def _solve(solver: Solver, model: ScoreModel, x: Tensor, noise: NoiseSource, plan: Plan, progress, callback) -> Tensor:
    """Run an adaptive solver; each accepted step it reports goes to the progress bar and the callback."""
    bar = tqdm(desc=solver.name, disable=not progress, leave=False, unit="step")
    count = [0]

    def on_step(t0, t1, x_t, denoised) -> None:
        bar.update(1)
        if callback is not None:
            callback(StepInfo(count[0], None, float(t0), float(t1), x_t, denoised, model.nfe))
        count[0] += 1

    try:
        out = solver.solve(model, x, noise, plan, on_step)
    except (SamplekitError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise PluginSolverError(f"{_owner(solver)} raised {type(exc).__name__}: {exc}") from exc
    finally:
        bar.close()
    _check_output(solver, out, x, "solve()")
    return out


def _started_at(model: ScoreModel, t_start: float) -> ScoreModel:
    """The model seen on [t_min, t_start] (same network and counter): for solvers that integrate from sde.T."""
    view = copy.copy(model)
    view.sde = model.sde.restricted(t_start)
    return view


def integrate(
    solver: Solver,
    model: ScoreModel,
    x: Tensor,
    ts: Tensor,
    noise: NoiseSource,
    progress: bool = False,
    callback: Callable[[StepInfo], None] | None = None,
    plan: Plan | None = None,
) -> Tensor:
    """Walk the grid ts with the solver's step; check every step for NaN/Inf; report to the callback.

    ``plan`` defaults to ``grid_plan(solver, ts)``.  A grid that starts where alpha_t = 0
    (rectified flow at T = 1) begins with ``alpha_zero_step`` taken here (solvers never see that
    time); the solver then runs on ts[1:].  A grid that ends at 0 (sigma = 0: k-diffusion's sigma lists)
    ends with ``step_to_zero`` taken here, unless the solver declares ``steps_to_zero = True``; the
    solver then runs on ts[:-1].  A step that raises something other than a samplekit
    error, or returns something other than (x of x's shape and dtype, state, denoised), is a
    :class:`PluginSolverError` naming the solver, its plugin and the step.
    """
    n = len(ts) - 1
    if plan is None:
        plan = grid_plan(solver, ts, int(getattr(model, "nfe_per_eval", 1)))
    last = n - 1 if ends_at_zero(ts) and not solver.steps_to_zero else n
    first = 0
    denoised: Tensor | None
    if _starts_at_alpha_zero(model, ts):
        x, denoised = alpha_zero_step(model, x, ts[0], ts[1])
        _check_finite(
            x, lambda _: f"the first step (t={float(ts[0]):g} -> {float(ts[1]):g}, from alpha_t = 0) produced NaN/Inf"
        )
        if callback is not None:
            callback(StepInfo(0, n, float(ts[0]), float(ts[1]), x, denoised, model.nfe))
        first = 1
    if first < last:
        x = _solver_steps(solver, model, x, ts, first, last, noise, plan, progress, callback)
    if first <= last < n:
        x, denoised = step_to_zero(model, x, ts[last])
        _check_finite(x, lambda _: f"the last step (t={float(ts[last]):g} -> 0) produced NaN/Inf")
        if callback is not None:
            callback(StepInfo(last, n, float(ts[last]), 0.0, x, denoised, model.nfe))
    return x


def _solver_steps(solver, model, x, ts, first, last, noise, plan, progress, callback) -> Tensor:
    """The solver's steps ts[first] -> ... -> ts[last] (of the whole grid ts)."""
    n = len(ts) - 1
    grid = ts[first : last + 1]
    try:
        state = solver.init(model, x, grid, noise, plan)
    except (SamplekitError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise PluginSolverError(f"{_owner(solver)}: init() raised {type(exc).__name__}: {exc}") from exc
    steps = tqdm(range(last - first), desc=solver.name, disable=not progress, leave=False)
    flag = finite.active()  # checks deferred to the end of the run (no host sync here): note the step
    if flag is not None:
        flag.describe = lambda j: _where(solver, j, n, ts[j], ts[j + 1])
    for i in steps:
        t0, t1 = grid[i], grid[i + 1]
        where = functools.partial(_where, solver, i + first, n, t0, t1)  # a string only if needed
        if flag is not None:
            flag.step = i + first
        try:
            out = solver.step(model, i, t0, t1, x, state, noise, plan)
        except (NonFiniteError, BudgetExceededError) as exc:
            raise type(exc)(f"{where()}: {exc}") from None
        except (SamplekitError, KeyboardInterrupt):
            raise
        except Exception as exc:
            raise PluginSolverError(f"{where()} ({_origin(solver)}) raised {type(exc).__name__}: {exc}") from exc
        x, state, denoised = _check_step_output(solver, out, x, where)
        _check_finite(x, functools.partial(_step_blew_up, where))
        if flag is not None:
            flag.step = None
        if callback is not None:
            callback(StepInfo(i + first, n, float(t0), float(t1), x, denoised, model.nfe))
    return x


def _check_step_output(solver: Solver, out, x: Tensor, where) -> tuple:
    """(x, state, denoised) from a step's return value, or a PluginSolverError naming the step."""
    if not isinstance(out, tuple) or len(out) != 3:
        got = (
            "None"
            if out is None
            else f"{type(out).__name__}" + (f" of length {len(out)}" if isinstance(out, tuple) else "")
        )
        raise PluginSolverError(
            f"{where()} ({_origin(solver)}) returned {got}; step() must return a tuple (x, state, denoised)"
        )
    _check_output(solver, out[0], x, "step()", where)
    return out


def _check_output(solver: Solver, new: object, x: Tensor, method: str, where=None) -> None:
    """The x a solver returned has x's shape, dtype and device, or a PluginSolverError."""
    label = f"{where()} ({_origin(solver)})" if where is not None else _owner(solver)
    if not isinstance(new, Tensor):
        raise PluginSolverError(f"{label}: {method} returned x as {type(new).__name__}, not a tensor")
    if new.shape != x.shape or new.dtype != x.dtype or new.device != x.device:
        raise PluginSolverError(
            f"{label}: {method} returned x of shape {tuple(new.shape)}, {new.dtype} on {new.device} for an input "
            f"of shape {tuple(x.shape)}, {x.dtype} on {x.device}; a solver must keep the input's shape, dtype "
            "and device"
        )


def _step_blew_up(where: Callable[[], str], failure: finite.Failure) -> str:
    return f"{failure.where or where()} produced NaN/Inf; use more steps or a more stable solver"


def _where(solver: Solver, i: int, n: int, t0: Tensor, t1: Tensor) -> str:
    return f"step {i} of {n} (t={float(t0):g} -> {float(t1):g}) of solver {solver.name!r}"


def _starts_at_alpha_zero(model: ScoreModel, ts: Tensor) -> bool:
    if not model.sde.alpha_T_is_zero:
        return False
    alpha, _ = model.sde.marginal(ts[0].to(torch.float64))
    return bool(alpha == 0)


def step_to_zero(model: ScoreModel, x: Tensor, t0: Tensor) -> tuple[Tensor, Tensor]:
    """The step from t0 onto sigma = 0 (t = 0, where alpha_0 x0 is all that is left): x_0 = alpha_0 x0_hat,
    x0_hat the model's prediction at (x_t0, t0).  It is every first-order step's limit there (Euler in the
    noise level y + (0 - s_t0) (y - x0_hat) / s_t0 = x0_hat, DDIM, DPM-Solver++(1)) and k-diffusion's last
    step onto a sigma list's final 0 in every sampler but LMS (whose solver takes that step itself).
    One network evaluation; returns (x_0, x0_hat)."""
    x0 = model.predict(x, t0).x0
    alpha, _ = model.sde.marginal(torch.zeros((), dtype=torch.float64))
    return alpha.to(x.dtype) * x0, x0


def alpha_zero_step(model: ScoreModel, x: Tensor, t0: Tensor, t1: Tensor) -> tuple[Tensor, Tensor]:
    """The first step from a time t0 where alpha_t0 = 0 (x_t0 = sigma_t0 eps carries nothing of x_0):

        x_t1 = alpha_t1 x0_hat + sigma_t1 eps_hat,   (x0_hat, eps_hat) = the model's prediction at (x_t0, t0),

    the exact solution over [t1, t0] with x0 held at its prediction: DDIM's / DPM-Solver++(1)'s step
    (sigma_t1 / sigma_t0) x + alpha_t1 (1 - e^{-h}) x0 with h = inf, and Euler's on the flow of rectified flow.
    For the reverse SDE it has the law of the exact transition (alpha_{t0|t1} = 0 makes q(x_t1 | x_t0, x0)
    = N(alpha_t1 x0, sigma_t1^2 I), and eps_hat = x_t0 / sigma_t0 is itself N(0, I), independent of x_0).
    The reverse-time f and g^2 diverge at alpha = 0, so Euler-Maruyama-type steps cannot start there.
    One network evaluation; returns (x_t1, x0_hat)."""
    pred = model.predict(x, t0)
    alpha, sigma = model.sde.marginal(t1.to(torch.float64))
    return alpha.to(x.dtype) * pred.x0 + sigma.to(x.dtype) * pred.eps, pred.x0


def _check_finite(x: Tensor, message: Callable[[finite.Failure], str]) -> None:
    """NaN/Inf in x: NonFiniteError(message(failure)) at once, or noted on the device inside ``finite.deferred()``
    (one site per calling line)."""
    site = message.func if isinstance(message, functools.partial) else message.__code__
    finite.check_finite(x, lambda failure: NonFiniteError(message(failure)), site)
