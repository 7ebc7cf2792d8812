"""Adaptive variable-step, variable-order Adams-Bashforth-Moulton (PECE or PEC) integration of an ODE system.

Why by hand: torchdiffeq's ``adams``/``implicit_adams`` are fixed-grid (its only adaptive methods are
Runge-Kutta), and an adaptive Adams method spends two right-hand-side evaluations per step where an
embedded Runge-Kutta pair such as dopri5 spends six.  Used by ``log_likelihood(method="adams_pec" | "adams_pece")``.

The method (Shampine & Gordon 1975, *Computer Solution of Ordinary Differential Equations*, ch. 4-5;
Hairer, Norsett & Wanner, *Solving ODEs I*, sec. III.5 "variable step size multistep methods").  With
the past nodes t_{n-k+1} < ... < t_n, their derivatives f_j = F(t_j, y_j) and the step h = t_{n+1} - t_n:

* Predict (Adams-Bashforth, order k): y^p = y_n + sum_{j=n-k+1}^{n} b_j f_j,
  b_j = int_{t_n}^{t_{n+1}} l_j(s) ds with l_j the Lagrange basis on the k past nodes.
* Evaluate f^p = F(t_{n+1}, y^p).
* Correct (Adams-Moulton with local extrapolation, order k+1): y_{n+1} = y_n + sum_j c_j f_j + c_{n+1} f^p,
  c the integrals of the Lagrange basis on the k past nodes and t_{n+1}.
* Estimate the local error of order k as the difference of the order-(k+1) and order-k correctors,
  err_k = y^{(k+1)}_{n+1} - y^{(k)}_{n+1}, which equals h (g_{k+1} - g_k) phi_{k+1}(n+1) of Shampine-Gordon
  (Milne's device: it is proportional to f^p minus the extrapolated derivative).
* Accept when ||err_k / (atol + rtol max(|y_n|, |y_{n+1}|))||_rms <= 1 (per tensor of the state, the
  largest over the tensors: torchdiffeq's mixed norm, as dopri5 uses).
* PECE (``final_eval=True``): Evaluate f_{n+1} = F(t_{n+1}, y_{n+1}) for the history; two evaluations
  per step.  PEC (``final_eval=False``): the history keeps f^p as the derivative at t_{n+1} (no final
  evaluation); one evaluation per step, a smaller stability region (harmless for these non-stiff flows;
  HNW I, sec. III.1 "predictor-corrector methods"; Lambert 1991, ch. 4).  A rejection costs one evaluation.
* Order: the errors err_{k-1}, err_{k+1} are estimated the same way (orders differing by one over the
  same f^p); the order moves to whichever of k-1, k, k+1 allows the longest next step, one at a time,
  up to ``max_order``.  Start: order 1 from the initial point, raising the order by one per accepted step
  while the history fills.
* Step: h_new = h * clip(safety * ||err||^{-1/(k+1)}, shrink, grow); a rejected step is retried with h_new
  (at most halved), and the step is clipped to land on the end time exactly (the right-hand side is not
  evaluated beyond it).

The integration weights are computed each step from the actual (variable) nodes, by solving the
moment conditions sum_j w_j s_j^p = 1/(p+1), p < m, on nodes scaled to the step (s = (t - t_n)/h).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import torch

from samplekit.errors import InvalidArgumentError, NonFiniteError, SamplekitError

Tensor = torch.Tensor


def _weights(nodes: list[float], t_n: float, h: float) -> list[float]:
    """w_j with sum_j w_j g(nodes_j) = int_{t_n}^{t_n+h} P(s) ds, P interpolating g at the nodes."""
    s = torch.tensor([(t - t_n) / h for t in nodes], dtype=torch.float64)
    m = len(nodes)
    powers = torch.arange(m, dtype=torch.float64)
    vander = s[None, :] ** powers[:, None]  # (p, j)
    moments = 1.0 / (powers + 1.0)
    return (h * torch.linalg.solve(vander, moments)).tolist()


def _combine(base: tuple[Tensor, ...], weights: list[float], fs: list[tuple[Tensor, ...]]) -> tuple[Tensor, ...]:
    out = []
    for i, b in enumerate(base):
        acc = b.clone()
        for w, f in zip(weights, fs):
            acc.add_(f[i], alpha=w)
        out.append(acc)
    return tuple(out)


def _error_norm(err, y0, y1, rtol: float, atol: float) -> float:
    """torchdiffeq's mixed norm: the largest over the state's tensors of the RMS of err / (atol + rtol max|y|)."""
    ratios = []
    for e, a, b in zip(err, y0, y1):
        scale = atol + rtol * torch.maximum(a.abs(), b.abs())
        ratios.append(float((e / scale).pow(2).mean().sqrt()))
    return max(ratios)


def check_span_and_tolerances(t0: float, t1: float, rtol: float, atol: float) -> None:
    """A non-empty interval and positive finite tolerances, or a clear error (before any evaluation)."""
    for name, value in (("rtol", rtol), ("atol", atol)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise InvalidArgumentError(f"{name}={value!r} must be a positive tolerance, e.g. 1e-5")
    if t0 == t1:
        raise InvalidArgumentError(f"t0 = t1 = {t0!r}: give an interval of non-zero length")


def odeint_adams(
    func: Callable[[Tensor, tuple[Tensor, ...]], tuple[Tensor, ...]],
    state: tuple[Tensor, ...],
    t0: float,
    t1: float,
    rtol: float,
    atol: float,
    max_order: int = 5,
    first_step: float | None = None,
    safety: float = 0.9,
    grow: float = 2.0,
    shrink: float = 0.2,
    max_steps: int = 10_000,
    final_eval: bool = True,
) -> tuple[tuple[Tensor, ...], dict]:
    """The state at t1 of d state/dt = func(t, state) from t0 (either direction), and stats.

    ``func`` takes a 0-d tensor time (dtype of the state) and the state tuple, returns a tuple of the
    same shapes; it is never called outside [t0, t1].  One step size for the whole state (a batch stacked
    in it shares it).  ``first_step`` default: the step that moves the state by half its tolerance, at
    most 1% of the span.  ``grow``/``shrink``: limits on the step ratio.  Returns
    ``(state_t1, {"n_steps", "n_rejected", "nfe", "orders"})``; ``nfe`` counts calls of ``func``.
    """
    check_span_and_tolerances(t0, t1, rtol, atol)
    if isinstance(max_order, bool) or not isinstance(max_order, int) or not 1 <= max_order <= 12:
        raise InvalidArgumentError(f"max_order={max_order!r} must be an integer in [1, 12], e.g. 5")
    like = state[0]
    span = t1 - t0
    direction = 1.0 if span > 0 else -1.0

    def call(t: float, y):
        return tuple(func(torch.tensor(t, dtype=like.dtype, device=like.device), y))

    y = tuple(state)
    f = call(t0, y)
    nfe = 1
    ts_hist, fs_hist = [t0], [f]
    if first_step is None:
        # order-1 start: a step that moves the state by half its tolerance, at most 1% of the span
        scale_f = max(float((fi / (atol + rtol * yi.abs())).pow(2).mean().sqrt()) for fi, yi in zip(f, y))
        first_step = 0.01 * abs(span) if scale_f == 0 else min(0.01 * abs(span), 0.5 / scale_f)
    h = direction * min(abs(first_step), abs(span))
    t = t0
    k = 1
    n_steps = n_rejected = 0
    orders = []
    while direction * (t1 - t) > 0:
        if n_steps + n_rejected >= max_steps:
            raise SamplekitError(f"adams: more than max_steps={max_steps} steps; loosen rtol/atol or raise max_steps")
        if direction * (t + h - t1) > -1e-12 * abs(span):
            h = t1 - t
        t_new = t + h
        k = min(k, len(ts_hist))
        past = ts_hist[-k:]
        pred = _combine(y, _weights(past, t, h), fs_hist[-k:])
        fp = call(t_new, pred)
        nfe += 1
        # correctors of order j+1 on the last j past nodes plus t_new, for j = k-1, k, k+1 where available
        corr = {}
        for j in range(max(k - 2, 0), min(k + 1, len(ts_hist)) + 1):
            nodes = ts_hist[len(ts_hist) - j :] + [t_new] if j > 0 else [t_new]
            corr[j] = _combine(y, _weights(nodes, t, h), (fs_hist[len(ts_hist) - j :] if j > 0 else []) + [fp])
        y_new = corr[k]  # order k+1 (k past nodes + the new one)

        y_n = y

        def err_of(j, corr=corr, y_n=y_n):  # error estimate of the order-j formula, scaled at y_n and y^{(j+1)}
            a, b = corr[j], corr[j - 1]
            return _error_norm(tuple(u - v for u, v in zip(a, b)), y_n, a, rtol, atol)

        e_k = err_of(k)
        if not math.isfinite(e_k):
            raise NonFiniteError("adams: the error estimate is not finite; the right-hand side produced NaN/Inf")
        if e_k > 1.0:
            n_rejected += 1
            h = h * max(shrink, min(0.5, safety * e_k ** (-1.0 / (k + 1))))
            if k > 1:
                k -= 1
            continue
        # accept
        n_steps += 1
        orders.append(k)
        t, y = t_new, y_new
        if final_eval:
            f = call(t, y)
            nfe += 1
        else:
            f = fp
        ts_hist.append(t)
        fs_hist.append(f)
        if len(ts_hist) > max_order + 2:
            ts_hist.pop(0)
            fs_hist.pop(0)
        # order choice: the candidate whose estimated error allows the longest next step
        best_k, best_fac = k, (e_k if e_k > 0 else 1e-10) ** (-1.0 / (k + 1))
        if k - 1 >= 1 and (k - 2) in corr:
            e = err_of(k - 1)
            fac = (e if e > 0 else 1e-10) ** (-1.0 / k)
            if fac > best_fac:
                best_k, best_fac = k - 1, fac
        if k + 1 <= max_order and (k + 1) in corr:
            e = err_of(k + 1)
            fac = (e if e > 0 else 1e-10) ** (-1.0 / (k + 2))
            if fac > best_fac:
                best_k, best_fac = k + 1, fac
        elif k + 1 <= max_order and len(ts_hist) >= k + 1:
            best_k = k + 1 if best_k == k else best_k  # start-up: the history has just grown
        k = best_k
        h = (
            h * max(1.0, min(grow, safety * best_fac))
            if best_fac * safety >= 1.0
            else h * max(shrink, safety * best_fac)
        )
    return y, {"n_steps": n_steps, "n_rejected": n_rejected, "nfe": nfe, "orders": orders}


#: The tuning options a caller may pass on (``log_likelihood(options=...)``): odeint_adams's parameters
#: other than the problem, the tolerances and the PEC/PECE choice.
OPTIONS = tuple(
    name
    for name in inspect.signature(odeint_adams).parameters
    if name not in {"func", "state", "t0", "t1", "rtol", "atol", "final_eval"}
)
