"""Adaptive variable-step, variable-order Hermite-Obreshkov (two-derivative multistep) PEC integration.

For y' = F(t, y) when each evaluation also returns the second derivative along the solution,
y'' = G(t, y) = dF/dt + (dF/dy) F (for the probability-flow ODE: autodiff of the same network call,
no extra forward pass; ``log_likelihood(method="hermite_pec")``).  With both y' and y'' at every past
node, an interpolant of y' through k nodes has degree 2k - 1 instead of k - 1: a multistep method of
twice the order for the same history, one evaluation per step.  Why by hand: neither torchdiffeq,
torchsde nor scipy has a multiderivative integrator.

The method (Obreschkoff 1940, "Neue Quadraturformeln", Abh. Preuss. Akad. Wiss. 4; Hairer & Wanner 1973,
"Multistep-multistage-multiderivative methods for ODEs", Computing 11; Hairer, Norsett & Wanner, *Solving
ODEs I*, sec. II.13 and III.5 for the variable-step machinery, as in ``samplekit/adams.py``).  With the past
nodes t_{n-k+1} < ... < t_n, their f_j = y'(t_j), g_j = y''(t_j) and the step h = t_{n+1} - t_n:

* Predict (order 2k): y^p = y_n + int_{t_n}^{t_{n+1}} P(s) ds, P the Hermite interpolant of degree 2k - 1
  with P(t_j) = f_j, P'(t_j) = g_j on the k past nodes:  y^p = y_n + sum_j (w_j f_j + v_j g_j).
* Evaluate (f^p, g^p) = (F, G)(t_{n+1}, y^p): the step's one evaluation.
* Correct (order 2k + 2, local extrapolation): the same with the k past nodes and t_{n+1} (degree 2k + 1).
* Estimate the local error of order 2k as the difference of the correctors on k and k - 1 past nodes,
  err_k = y^{(k)}_{n+1} - y^{(k-1)}_{n+1} (Milne's device, as in ``adams.py``).
* Accept when ||err / (atol + rtol max(|y_n|, |y_{n+1}|))||_rms <= 1, the RMS taken over the whole state
  (every tensor stacked: scipy's norm), err the larger of err_k and ``pc_guard`` (y_{n+1} - y^p).  Both
  correctors take the new node's derivatives at y^p, so err_k cannot see the predictor's error; it reaches
  y_{n+1} as ~ h L w |y^p - y(t_{n+1})| (L the Lipschitz constant, w the new node's weight), which
  ``pc_guard`` = 0.01 stands for.  Measured over 10 batches on ring2d / gmm16_full / single2d at 1e-5
  (vs_scipy_seeds.md): 0.01 lowers NFE 2-3% and error 15-50% against no guard (large step ratios at the
  start had let a bad prediction through: single2d at 1e-4, 27x RK45's error, 5x with the guard); 0.1
  costs 10-30% more NFE.
* PEC: the history keeps (f^p, g^p) as the derivatives at t_{n+1}; a rejection costs one evaluation.
* Order: k + 1 when its estimate allows a longer next step (or, at the start, as soon as the history has
  k + 1 nodes), up to ``max_order`` = 3 (degree 7); never lowered.
  Measured on the exact mixtures of ``benchmarks/likelihood/``: k = 4 (degree 9) makes the PEC
  extrapolation unstable (2-4x the NFE, 10-100x the error); lowering the order on a rejection (what
  ``adams.py`` does) falls into order 1 on a hard stretch and costs 3-5 extra rejections there.
* Step: h_new = h * clip(safety * ||err||^{-1/(2k+1)}, shrink, grow), ``grow`` = 10 for the first
  ``startup`` accepted steps (the start at order 1 from a deliberately small step); the step is stretched
  by up to ``stretch`` to land on t1 rather than leave a sliver.  First step: the step whose second-order
  Taylor term h^2 |y''| / 2 equals the tolerance (the largest over the state's tensors of the RMS of
  y'' / (atol + rtol |y|)), at most 10% of the span.  (Bounding it also by the step that moves y by its
  tolerance, as ``adams.py`` must without y'', costs 3-4 start-up steps: +2-5% NFE over 10 batches.)

Weights come from the moment conditions on the step-scaled nodes s = (t - t_n) / h: for p < 2m (m nodes),
sum_j w_j s_j^p + v_j p s_j^(p-1) / h = 1 / (p + 1) (times h), solved in float64.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import torch

from samplekit.adams import _combine, _error_norm, check_span_and_tolerances
from samplekit.errors import InvalidArgumentError, NonFiniteError, SamplekitError

Tensor = torch.Tensor
State = tuple[Tensor, ...]


def hermite_weights(nodes: list[float], t_n: float, h: float) -> tuple[list[float], list[float]]:
    """(w, v) with int_{t_n}^{t_n+h} P = sum_j w_j P(nodes_j) + v_j P'(nodes_j) for every P of degree < 2m."""
    s = torch.tensor([(t - t_n) / h for t in nodes], dtype=torch.float64)
    m = len(nodes)
    p = torch.arange(2 * m, dtype=torch.float64)[:, None]
    values = s[None, :] ** p
    slopes = p * s[None, :] ** (p - 1).clamp(min=0)
    slopes[0] = 0.0
    moments = 1.0 / (p[:, 0] + 1.0)
    sol = torch.linalg.solve(torch.cat([values, slopes], 1), moments)
    return (h * sol[:m]).tolist(), (h * h * sol[m:]).tolist()


def _rms_norm(err: State, y0: State, y1: State, rtol: float, atol: float) -> float:
    """RMS over the whole state of err / (atol + rtol max(|y0|, |y1|))."""
    total, count = 0.0, 0
    for e, a, b in zip(err, y0, y1):
        total += float((e / (atol + rtol * torch.maximum(a.abs(), b.abs()))).pow(2).sum())
        count += e.numel()
    return math.sqrt(total / count)


def odeint_hermite(
    func: Callable[[Tensor, State], tuple[State, State]],
    state: State,
    t0: float,
    t1: float,
    rtol: float,
    atol: float,
    max_order: int = 3,
    safety: float = 0.8,
    grow: float = 2.0,
    shrink: float = 0.2,
    startup: int = 4,
    stretch: float = 1.2,
    pc_guard: float = 0.01,
    max_steps: int = 10_000,
) -> tuple[State, dict]:
    """The state at t1 of d state/dt = F(t, state) from t0 (either direction), and stats.

    ``func(t, state)`` returns ``(F, G)``: the first and the second derivative of the state along the
    solution, tuples of the state's shapes; t is a 0-d tensor (the state's dtype), never outside
    [t0, t1].  ``max_order`` (1-3) bounds k, the past nodes of the predictor (order 2k).  Returns
    ``(state_t1, {"n_steps", "n_rejected", "nfe", "orders"})``; ``nfe`` counts calls of ``func``.
    """
    check_span_and_tolerances(t0, t1, rtol, atol)
    if isinstance(max_order, bool) or not isinstance(max_order, int) or not 1 <= max_order <= 3:
        raise InvalidArgumentError(
            f"max_order={max_order!r} must be 1, 2 or 3 (past nodes of the Hermite predictor; 4 is unstable)"
        )
    like = state[0]
    span = t1 - t0
    direction = 1.0 if span > 0 else -1.0

    def call(t: float, y: State) -> tuple[State, State]:
        f, g = func(torch.tensor(t, dtype=like.dtype, device=like.device), y)
        return tuple(f), tuple(g)

    y = tuple(state)
    f, g = call(t0, y)
    nfe = 1
    hist: list[tuple[float, State, State]] = [(t0, f, g)]
    scale_g = _error_norm(g, y, y, rtol, atol)  # the largest over the state's tensors
    h = min(0.1 * abs(span), math.sqrt(2.0 / scale_g) if scale_g > 0 else math.inf)
    h *= direction
    t = t0
    k = 1
    n_steps = n_rejected = 0
    orders: list[int] = []

    def integral(j: int, t_n: float, step: float, y_n: State, new: tuple[float, State, State] | None) -> State:
        """y_n + the integral over the step of the Hermite interpolant on the last j past nodes (+ the new one)."""
        nodes = hist[len(hist) - j :] if j > 0 else []
        if new is not None:
            nodes = nodes + [new]
        w, v = hermite_weights([n[0] for n in nodes], t_n, step)
        return _combine(_combine(y_n, w, [n[1] for n in nodes]), v, [n[2] for n in nodes])

    while direction * (t1 - t) > 0:
        if n_steps + n_rejected >= max_steps:
            raise SamplekitError(f"hermite: more than max_steps={max_steps} steps; loosen rtol/atol or raise max_steps")
        if direction * (t + stretch * h - t1) > -1e-12 * abs(span):
            h = t1 - t
        t_new = t + h
        pred = integral(k, t, h, y, None)  # k <= len(hist): k rises only once the history holds k + 1 nodes
        fp, gp = call(t_new, pred)
        nfe += 1
        new = (t_new, fp, gp)
        corr = {j: integral(j, t, h, y, new) for j in range(k - 1, min(k + 1, len(hist)) + 1)}
        y_new = corr[k]

        def err_of(j: int, corr=corr, y_n=y) -> float:
            return _rms_norm(tuple(a - b for a, b in zip(corr[j], corr[j - 1])), y_n, corr[j], rtol, atol)

        # the PEC term: the new node's derivatives are taken at y^p, which moves y_{n+1} by ~ h L |y^p - y|
        e_pc = _rms_norm(tuple(a - b for a, b in zip(y_new, pred)), y, y_new, rtol, atol)
        e_k = max(err_of(k), pc_guard * e_pc)
        if not math.isfinite(e_k):
            raise NonFiniteError("hermite: the error estimate is not finite; the right-hand side produced NaN/Inf")
        if e_k > 1.0:
            n_rejected += 1
            h = h * max(shrink, safety * e_k ** (-1.0 / (2 * k + 1)))  # no forced halving: e ~ h^(2k+1)
            continue
        n_steps += 1
        orders.append(k)
        t, y = t_new, y_new
        hist.append(new)
        if len(hist) > max_order + 2:
            hist.pop(0)
        best_k, best_fac = k, max(e_k, 1e-10) ** (-1.0 / (2 * k + 1))
        if k < max_order and (k + 1) in corr:
            fac = max(err_of(k + 1), 1e-10) ** (-1.0 / (2 * k + 3))
            if fac > best_fac:
                best_k, best_fac = k + 1, fac
        elif k < max_order and len(hist) > k:
            best_k = k + 1  # start-up: the history has just grown
        k = best_k
        limit = 10.0 if n_steps < startup else grow
        h = h * min(limit, max(shrink, safety * best_fac))
    return y, {"n_steps": n_steps, "n_rejected": n_rejected, "nfe": nfe, "orders": orders}


#: The tuning options ``log_likelihood(method="hermite_pec", options=...)`` passes on.
OPTIONS = tuple(
    name
    for name in inspect.signature(odeint_hermite).parameters
    if name not in {"func", "state", "t0", "t1", "rtol", "atol"}
)
