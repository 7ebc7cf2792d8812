"""Log-likelihood, encoding and decoding through the probability-flow ODE (a continuous normalising flow).

The probability-flow ODE dx/dt = F(x, t) = f(x, t) - g(t)^2 s(x, t) / 2 carries p_t to p_t'.
Along a solution, d/dt log p_t(x_t) = -div F(x_t, t) (instantaneous change of variables), so
integrating the augmented ODE (x_t, Delta_t) with dDelta/dt = div F from t_min up to T gives

    log p_{t_min}(x) = log p_T(x_T) + Delta_T  ~=  sde.prior_log_prob(x_T) + Delta_T.

Two things to know about what is returned:

* it is the density of the model's p_{t_min}, the law at the ODE's end point (as score_sde and
  k-diffusion return), not of p_0: for the VP SDE with t_min = 1e-3, p_{t_min} is p_0 blurred by
  sigma ~ 0.01.  With an exact Gaussian mixture the exact value is
  ``mixture.noised_log_prob(x, *sde.marginal(sde.t_min))``.
* the prior N(0, prior_std^2 I) stands in for p_T; the gap log prior(x_T) - log p_T(x_T) is the
  prior mismatch, measurable from ``result.latent`` (for VP with beta_max = 20, alpha_T = 0.0066).

NFE counts forward calls of the network (``model.nfe``): one per ODE function evaluation, whatever
the estimator.  The divergence's backward passes are counted apart in ``n_vjp``: ``exact`` spends d
per evaluation, the Hutchinson estimators one per probe.

Integrators (``method=``): any torchdiffeq method (default ``dopri5``); samplekit's adaptive
Adams-Bashforth-Moulton (``samplekit/adams.py``): ``adams_pece`` (two evaluations per step) and ``adams_pec``
(one); and samplekit's two-derivative Hermite-Obreshkov multistep (``samplekit/hermite.py``): ``hermite_pec``,
one evaluation per step, which also takes the second derivatives d F/dt and d (div F)/dt along the flow by
autodiff of that evaluation (no extra network call; 3 + P more backward passes, P the probes, and the
estimator's passes keep their graph).  Against scipy's RK45 on the same ODE at rtol = atol = 1e-5, over 10
batches of 256 exact samples (``benchmarks/likelihood/vs_scipy_seeds.md``): ``hermite_pec`` spends
0.41-0.48x of RK45's NFE (means per target; worst batch 0.55x) at 0.10-0.27x its error; ``adams_pec``
0.79-0.86x.  ``hermite_pec`` is not the default because it buys NFE with backward passes: on the cheap
networks of ``benchmarks/likelihood/hermite_cases.md`` its wall time is 0.76-2.9x dopri5's; and it needs a
network differentiable in t (it refuses, at the first evaluation, one whose output has no gradient in t,
such as the shipped digits UNet on its discrete timesteps).  Off the VP
mixtures ``adams_pec`` is not safe as a default either (``benchmarks/likelihood/adams_default.md``): on the
shipped digits UNet (a DiscreteVPSDE, whose piecewise-constant beta(t) jumps at its 1000 grid times) it spends
1.66x dopri5's NFE at 1e-4, and under the VE and EDM SDEs its error at rtol = atol = 1e-5 is 2-3x dopri5's.

torchdiffeq is imported when first needed (``pip install samplekit[ode]``).
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from samplekit.adams import OPTIONS as ADAMS_OPTIONS
from samplekit.adams import odeint_adams
from samplekit.checks import check_seed, positive_int
from samplekit.errors import ArgumentTypeError, InvalidArgumentError
from samplekit.hermite import OPTIONS as HERMITE_OPTIONS
from samplekit.hermite import odeint_hermite
from samplekit.noise import NoiseSource
from samplekit.ode import check_ode as _check_ode  # torchdiffeq, shared with ode_* solvers
from samplekit.ode import integrate as _integrate
from samplekit.ode import methods as _torchdiffeq_methods
from samplekit.reverse import flow_velocity, probability_flow_drift
from samplekit.score import NonFiniteError, ScoreModel
from samplekit.trace import TraceEstimator

Tensor = torch.Tensor


@dataclass
class LikelihoodResult:
    """Per-sample log-density under the model's p_{t_min}, with what it cost.

    ``log_prob`` (B,) nats; ``bits_per_dim`` (B,) (see ``log_likelihood`` for the convention);
    ``stderr`` (B,) the standard error of ``log_prob`` over the probes (None for a deterministic
    estimator or a single probe); ``log_prob_probes`` (B, P) one estimate per probe;
    ``latent`` x_T; ``prior_log_prob`` log prior(x_T); ``nfe`` network forward calls;
    ``n_vjp`` backward passes of the divergence estimator.
    """

    log_prob: Tensor
    bits_per_dim: Tensor
    nfe: int
    stderr: Tensor | None
    log_prob_probes: Tensor
    latent: Tensor
    prior_log_prob: Tensor
    n_vjp: int
    seconds: float
    estimator: str
    method: str
    options: dict = field(default_factory=dict)


# --- validation (before any work) ------------------------------------------------------------
def _check_model(model) -> None:
    if not isinstance(model, ScoreModel):
        raise ArgumentTypeError(
            f"model={model!r} is not a ScoreModel; wrap a network with sk.ScoreModel.from_eps(...) "
            "or take target.score_model(sde)"
        )


def _check_points(model: ScoreModel, x, argument: str) -> Tensor:
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise ArgumentTypeError(
            f"{argument} must be a floating-point tensor of shape (batch, {', '.join(map(str, model.shape))})"
        )
    if tuple(x.shape[1:]) != model.shape or x.shape[0] < 1:
        raise InvalidArgumentError(
            f"{argument} has shape {tuple(x.shape)}; this model takes (batch, "
            f"{', '.join(map(str, model.shape))}) — one sample per row"
        )
    finite = torch.isfinite(x.flatten(1)).all(1)
    if not bool(finite.all()):
        bad = torch.nonzero(~finite).flatten()[:5].tolist()
        raise InvalidArgumentError(
            f"{argument} holds NaN or Inf in rows {bad}{' ...' if (~finite).sum() > 5 else ''}; "
            "drop or fix those points before computing likelihoods"
        )
    return x


def _resolve_estimator(estimator) -> TraceEstimator:
    if isinstance(estimator, str):
        from samplekit.plugins import get_registry

        return get_registry().create("trace_estimator", estimator)
    if all(hasattr(estimator, a) for a in ("estimate", "draw_probes", "stochastic")):
        return estimator
    raise ArgumentTypeError(
        f"estimator={estimator!r} must be a registered name (see `samplekit list trace_estimator`) "
        "or a TraceEstimator instance"
    )


def _flow(model: ScoreModel, x: Tensor, t0: float, t1: float, method, rtol, atol, options) -> Tensor:
    def func(t, state):
        (x_t,) = state
        drift, _ = probability_flow_drift(model, x_t, t)
        return (drift,)

    with torch.no_grad():
        (out,) = _integrate(func, (x,), t0, t1, method, rtol, atol, options)
    if not torch.isfinite(out).all():
        raise NonFiniteError(
            f"the probability-flow ODE ({method}) produced NaN/Inf between t={t0:g} and t={t1:g}; "
            "tighten rtol/atol or check the model"
        )
    return out


ADAMS = {"adams_pece": True, "adams_pec": False}  # method -> final evaluation (PECE) or not (PEC)
HERMITE = "hermite_pec"
#: samplekit's own integrators and the tuning options each takes
OWN_METHODS = {**{m: ADAMS_OPTIONS for m in ADAMS}, HERMITE: HERMITE_OPTIONS}


def _check_method(method, rtol, atol, options) -> None:
    """``method`` a torchdiffeq method or one of samplekit's, with its options, checked before any work."""
    if isinstance(method, str) and method in OWN_METHODS:
        _check_ode("dopri5", rtol, atol)  # the tolerance checks
        unknown = sorted(set(options or {}) - set(OWN_METHODS[method]))
        if unknown:
            raise InvalidArgumentError(
                f"options={options!r}: {', '.join(unknown)} not understood by method={method!r}; "
                f"it takes {', '.join(OWN_METHODS[method])}"
            )
        return
    if not isinstance(method, str) or method not in _torchdiffeq_methods():
        raise InvalidArgumentError(
            f"method={method!r} is not a torchdiffeq method nor one of samplekit's; use one of "
            f"{', '.join(sorted(OWN_METHODS))} or of torchdiffeq's {', '.join(_torchdiffeq_methods())}"
        )
    _check_ode(method, rtol, atol)
    if _fixed_grid(method) and not {"step_size", "grid_constructor"} & set(options or {}):
        raise InvalidArgumentError(
            f"method={method!r} is a fixed-step torchdiffeq method: without options={{'step_size': h}} it takes "
            "one step over [t_min, T] and returns its error as the log-likelihood; pass options={'step_size': "
            "1e-3} (its error then shrinks with h), or an adaptive method such as 'dopri5'"
        )


def _fixed_grid(method: str) -> bool:
    from torchdiffeq._impl.odeint import SOLVERS
    from torchdiffeq._impl.solvers import FixedGridODESolver

    return isinstance(SOLVERS.get(method), type) and issubclass(SOLVERS[method], FixedGridODESolver)


def _check_hermite(model: ScoreModel, est, method) -> None:
    """hermite_pec differentiates the raw network output in t and the divergence estimate along the flow:
    a plain ScoreModel (not a guidance / conditioning wrapper, whose ``predict`` combines several
    networks) and an estimator whose ``estimate`` takes ``create_graph``."""
    if method != HERMITE:
        return
    if type(model).predict is not ScoreModel.predict:
        raise ArgumentTypeError(
            f"method={HERMITE!r} differentiates one network's output in t, and {model.name!r} is a wrapper "
            f"({type(model).__name__}: guidance or conditioning over several networks); use method='dopri5'"
        )
    if "create_graph" not in inspect.signature(est.estimate).parameters:
        raise ArgumentTypeError(
            f"method={HERMITE!r} differentiates the divergence along the trajectory, so the estimator's "
            f"estimate() must accept create_graph=True (as the built-in ones do); {type(est).__name__}.estimate "
            "does not: add the keyword (pass it on to torch.autograd.grad) or use method='dopri5'"
        )


def _hermite_rhs(model: ScoreModel, est, probes, backward: list[int]):
    """(t, (x, Delta)) -> ((F, div F), (d F/dt, d div F/dt)), the total derivatives along the flow.

    One network call; the second derivatives by autodiff of that call, t a per-sample leaf:
    d F/dt = dF/dt + (dF/dx) F, one Jacobian-vector product as two backward passes (the double-VJP
    trick: u -> u^T [dF/dx, dF/dt] is linear in u, its gradient in u along (F, 1) is the JVP); and
    d div/dt = d div/dt + grad_x(div) . F, one backward pass of the (differentiable) estimate per probe.
    At the first call, one more backward pass checks that the network's output depends on t through
    autograd (a detached or rounded time input would silently drop dF/dt).  ``backward`` accumulates
    these backward passes beyond the estimator's own.
    """
    checked = [False]

    def func(t, state):
        x_t = state[0]
        with torch.enable_grad():
            x_in = x_t.detach().requires_grad_(True)
            t_in = torch.full((x_t.shape[0],), float(t), dtype=x_t.dtype, device=x_t.device, requires_grad=True)
            out, pred = model.predict_with_output(x_in, t_in)
            if not checked[0]:
                (g_net,) = torch.autograd.grad(out.sum(), t_in, retain_graph=True, allow_unused=True)
                backward[0] += 1
                if g_net is None or not bool(g_net.any()):
                    raise InvalidArgumentError(
                        f"method={HERMITE!r} differentiates the network in t, and {model.name!r} has no gradient "
                        "in its time input (detached, rounded or unused); use method='dopri5' or 'adams_pec'"
                    )
                checked[0] = True
            drift = flow_velocity(model, x_in, t_in, pred)
            div = est.estimate(drift, x_in, probes, create_graph=True)
            velocity = drift.detach()
            d_div = []
            for p in range(div.shape[1]):
                gx, gt = torch.autograd.grad(div[:, p].sum(), (x_in, t_in), retain_graph=True, allow_unused=True)
                along = torch.zeros_like(div[:, p]) if gx is None else (gx * velocity).flatten(1).sum(1)
                d_div.append(along if gt is None else along + gt)
            u = torch.zeros_like(drift, requires_grad=True)
            gx, gt = torch.autograd.grad(drift, (x_in, t_in), grad_outputs=u, create_graph=True)
            lin = (gx * velocity).sum() + gt.sum()
            (d_drift,) = torch.autograd.grad(lin, u)
        backward[0] += div.shape[1] + 2
        return (velocity, div.detach().to(x_t.dtype)), (d_drift.detach(), torch.stack(d_div, 1).detach().to(x_t.dtype))

    return func


def _integrate_augmented(func, state, t0, t1, method, rtol, atol, options):
    if method == HERMITE:
        out, _ = odeint_hermite(func, state, t0, t1, rtol, atol, **(options or {}))
        return out
    if method in ADAMS:
        out, _ = odeint_adams(func, state, t0, t1, rtol, atol, final_eval=ADAMS[method], **(options or {}))
        return out
    return _integrate(func, state, t0, t1, method, rtol, atol, options)


# --- the public functions ----------------------------------------------------------------------
def log_likelihood(
    model: ScoreModel,
    x: Tensor,
    estimator: str | TraceEstimator = "hutchinson_rademacher",
    method: str = "dopri5",
    rtol: float = 1e-5,
    atol: float = 1e-5,
    n_probes: int = 1,
    seed: int | Sequence[int] | None = 0,
    bins: int | None = None,
    data_range: tuple[float, float] = (-1.0, 1.0),
    options: dict | None = None,
) -> LikelihoodResult:
    """log p_{t_min}(x) per sample by the probability-flow ODE, batched (no loop over samples).

    :param estimator: a registered trace estimator (``exact``, ``hutchinson_gaussian``,
        ``hutchinson_rademacher``) or an instance.
    :param method, rtol, atol, options: the integrator: ``adams_pece`` / ``adams_pec`` (samplekit's
        adaptive Adams, ``samplekit.adams.odeint_adams``; options ``max_order`` (5), ``first_step``, ...),
        ``hermite_pec`` (``samplekit.hermite.odeint_hermite``, about half RK45's NFE, needs a plain
        ScoreModel (not a guidance wrapper) whose network is differentiable in t, and an estimator whose
        ``estimate`` takes ``create_graph``; options ``max_order``
        (3), ``safety``, ...) or a torchdiffeq method, given to ``torchdiffeq.odeint`` (fixed-step methods take
        ``options={"step_size": h}``).  Error control: the RMS of the error over rtol/atol-scaled entries,
        per tensor of the state (x and the log-det Delta), the larger of the two; for ``hermite_pec`` the
        RMS over the whole state (scipy's norm).
    :param n_probes: Hutchinson probes per sample, fixed along the trajectory and averaged; 2 or more
        give ``stderr``.
    :param seed: seeds the probes (an int, or one int per sample).
    :param bins, data_range: the bits/dim convention.  ``bins=None`` (default): continuous bits/dim,
        ``-log_prob / (d ln 2)``.  ``bins=256``: x are dequantised pixels, x = lo + (k + u) (hi - lo) / bins
        with integer k in [0, bins) and u ~ U(0, 1) (see ``dequantize``), and bits/dim is that of the
        discrete data, ``-log_prob / (d ln 2) + log2(bins / (hi - lo))``: +7 for [-1, 1] and +8 for
        [0, 1] with 256 bins (the score_sde convention); an upper bound on the discrete model's bits/dim.
    """
    _check_model(model)
    x = _check_points(model, x, "x")
    check_seed(seed, x.shape[0])
    _check_method(method, rtol, atol, options)
    est = _resolve_estimator(estimator)
    _check_hermite(model, est, method)
    d = x[0].numel()
    n_probes = positive_int(n_probes, "n_probes")
    if hasattr(est, "check"):
        est.check(d, n_probes)
    offset = _bins_offset(bins, data_range)
    sde = model.sde
    probes = est.draw_probes(NoiseSource(seed, x.shape[0], device=x.device), x, n_probes) if est.stochastic else None
    n_vjp0 = getattr(est, "n_vjp", 0)
    nfe0 = model.nfe
    start = time.perf_counter()

    def func(t, state):
        x_t = state[0]
        with torch.enable_grad():
            x_in = x_t.detach().requires_grad_(True)
            drift, _ = probability_flow_drift(model, x_in, t)
            div = est.estimate(drift, x_in, probes)
        return drift.detach(), div.detach().to(x_t.dtype)

    backward = [0]  # hermite_pec's backward passes beyond the estimator's
    rhs = _hermite_rhs(model, est, probes, backward) if method == HERMITE else func
    width = n_probes if est.stochastic else 1
    delta0 = torch.zeros(x.shape[0], width, dtype=x.dtype, device=x.device)
    x_T, delta = _integrate_augmented(rhs, (x, delta0), sde.t_min, sde.T, method, rtol, atol, options)
    if not (torch.isfinite(x_T).all() and torch.isfinite(delta).all()):
        raise NonFiniteError(f"the augmented probability-flow ODE ({method}) produced NaN/Inf; tighten rtol/atol")
    prior = sde.prior_log_prob(x_T)
    per_probe = prior[:, None] + delta
    log_prob = per_probe.mean(1)
    stderr = per_probe.std(1) / math.sqrt(width) if est.stochastic and width > 1 else None
    bpd = -log_prob / (d * math.log(2)) + offset
    return LikelihoodResult(
        log_prob,
        bpd,
        model.nfe - nfe0,
        stderr,
        per_probe,
        x_T,
        prior,
        getattr(est, "n_vjp", 0) - n_vjp0 + backward[0],
        time.perf_counter() - start,
        getattr(est, "name", type(est).__name__),
        method,
        {
            "rtol": rtol,
            "atol": atol,
            "n_probes": n_probes,
            "bins": bins,
            "data_range": tuple(data_range),
            "t_min": sde.t_min,
            "T": sde.T,
        },
    )


def _bins_offset(bins, data_range) -> float:
    if bins is None:
        return 0.0
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise InvalidArgumentError(
            f"bins={bins!r} must be an integer number of levels >= 2 (256 for 8-bit images), or None"
        )
    lo, hi = map(float, data_range)
    if not hi > lo:
        raise InvalidArgumentError(f"data_range={data_range!r} must be (low, high) with high > low, e.g. (-1, 1)")
    return math.log2(bins / (hi - lo))


def dequantize(
    levels: Tensor,
    bins: int = 256,
    data_range: tuple[float, float] = (-1.0, 1.0),
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Uniform dequantisation: integer levels k in [0, bins) -> lo + (k + u) (hi - lo) / bins, u ~ U(0, 1)."""
    _bins_offset(bins, data_range)
    if levels.is_floating_point() or levels.min() < 0 or levels.max() >= bins:
        raise InvalidArgumentError(f"levels must be integers in [0, {bins}); pass the raw pixel values (e.g. uint8)")
    lo, hi = map(float, data_range)
    g = torch.Generator(device=levels.device).manual_seed(int(seed))
    u = torch.rand(levels.shape, generator=g, dtype=dtype, device=levels.device)
    return lo + (levels.to(dtype) + u) * ((hi - lo) / bins)


def encode(
    model: ScoreModel,
    x: Tensor,
    method: str = "dopri5",
    rtol: float = 1e-5,
    atol: float = 1e-5,
    options: dict | None = None,
) -> Tensor:
    """Data -> latent: integrate the probability-flow ODE from t_min up to T (deterministic)."""
    _check_model(model)
    x = _check_points(model, x, "x")
    _check_ode(method, rtol, atol)
    return _flow(model, x, model.sde.t_min, model.sde.T, method, rtol, atol, options)


def decode(
    model: ScoreModel,
    z: Tensor,
    method: str = "dopri5",
    rtol: float = 1e-5,
    atol: float = 1e-5,
    options: dict | None = None,
) -> Tensor:
    """Latent -> data: integrate the probability-flow ODE from T down to t_min."""
    _check_model(model)
    z = _check_points(model, z, "z")
    _check_ode(method, rtol, atol)
    return _flow(model, z, model.sde.T, model.sde.t_min, method, rtol, atol, options)


def interpolate(
    model: ScoreModel,
    x1: Tensor,
    x2: Tensor,
    weights,
    spherical: bool = False,
    method: str = "dopri5",
    rtol: float = 1e-5,
    atol: float = 1e-5,
    options: dict | None = None,
) -> Tensor:
    """Encode x1 and x2, mix the latents, decode; returns (len(weights), B, *shape).

    Linear: z = w z1 + (1 - w) z2.  Spherical (``spherical=True``, per sample):
    z = [sin(w theta) z1 + sin((1 - w) theta) z2] / sin(theta), theta the angle between z1 and z2,
    which keeps the latent norm typical of the Gaussian prior.  w = 1 gives x1, w = 0 gives x2.
    """
    _check_model(model)
    x1 = _check_points(model, x1, "x1")
    x2 = _check_points(model, x2, "x2")
    if x1.shape != x2.shape:
        raise InvalidArgumentError(
            f"x1 has shape {tuple(x1.shape)} and x2 {tuple(x2.shape)}; pass two batches of one shape"
        )
    w = torch.as_tensor(weights, dtype=x1.dtype, device=x1.device).flatten()
    if w.numel() < 1 or not torch.isfinite(w).all():
        raise InvalidArgumentError(
            f"weights={weights!r} must be a non-empty list of finite mixing weights, e.g. [0, 0.5, 1]"
        )
    _check_ode(method, rtol, atol)
    z = encode(model, torch.cat([x1, x2]), method, rtol, atol, options)
    z1, z2 = z[: x1.shape[0]], z[x1.shape[0] :]
    wb = w.reshape(-1, 1, *([1] * (x1.ndim - 1)))
    if spherical:
        f1, f2 = z1.flatten(1), z2.flatten(1)
        cos = (f1 * f2).sum(1) / (f1.norm(dim=1) * f2.norm(dim=1))
        theta = torch.arccos(cos.clamp(-1.0, 1.0)).reshape(1, -1, *([1] * (x1.ndim - 1)))
        sin = torch.sin(theta)
        small = sin.abs() < 1e-6  # nearly parallel: fall back to the linear mix
        safe = torch.where(small, torch.ones_like(sin), sin)
        mixed = torch.where(
            small, wb * z1 + (1 - wb) * z2, (torch.sin(wb * theta) * z1 + torch.sin((1 - wb) * theta) * z2) / safe
        )
    else:
        mixed = wb * z1 + (1 - wb) * z2
    out = decode(model, mixed.reshape(-1, *x1.shape[1:]), method, rtol, atol, options)
    return out.reshape(w.numel(), *x1.shape)
