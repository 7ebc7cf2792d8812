"""A linear multistep solver in the noise level with per-step coefficients (what LD3's ``coefficients``
option fits), started from iPNDM's Adams-Bashforth weights.

With s_t = sigma_t / alpha_t, y = x / alpha_t, dy/ds = eps, step i (eps_i = eps(x_i, t_i), newest first):

    y_{i+1} = y_i + (s_{i+1} - s_i) sum_{m < k_i} b_im eps_{i-m},   k_i = min(order, i + 1),

b_i = the Adams-Bashforth weights of order k_i (``ipndm``'s) by default, so with those this *is*
iPNDM (``ipndm`` with ``max_order = order``).  Fitted, b_im are free per step (their sum is the step's
scale, as AMED's c).  ``afs``: the first eps is the unit-variance posterior mean sigma x / (alpha^2 +
sigma^2) instead of a call (AMED's analytical first step), so N calls walk N + 1 steps.  One call a step;
a step from alpha_t = 0 is ``sample``'s ``alpha_zero_step``.  Coefficients are constructor arguments
(float64, differentiable); nothing of a run is kept on self.
"""

from __future__ import annotations

import torch

from samplekit.solver import Plan, Solver, SolverError
from samplekit_fitted.directions import _c, level

ADAMS_BASHFORTH = ((1.0,), (1.5, -0.5), (23 / 12, -16 / 12, 5 / 12), (55 / 24, -59 / 24, 37 / 24, -9 / 24))


def adams_bashforth(steps: int, order: int, afs: bool = False) -> torch.Tensor:
    """(steps, order) iPNDM weights: row i holds the order-min(order, i + 1) weights, zero-padded."""
    b = torch.zeros(steps, order, dtype=torch.float64)
    for i in range(steps):
        w = ADAMS_BASHFORTH[min(order, i + 1) - 1]
        b[i, : len(w)] = torch.tensor(w, dtype=torch.float64)
    return b


class LearnedMultistep(Solver):
    """Linear multistep in the noise level with fitted per-step weights b_im (iPNDM's by default)."""

    name = "learned_multistep"
    order = 2.0
    stochastic = False
    nfe_per_step = 1
    default_schedule = "karras"

    def __init__(self, b=None, afs: bool = False, **base) -> None:
        super().__init__(**base)
        self.b = adams_bashforth(1, 1) if b is None else torch.as_tensor(b, dtype=torch.float64)
        if self.b.ndim != 2:
            raise SolverError(f"learned multistep: b must be (steps, order); got {tuple(self.b.shape)}")
        self.afs = bool(afs)

    def plan_for_grid(self, n_steps: int, calls_per_eval: int = 1) -> Plan:
        """The cap for a grid: one call a step, one fewer with the analytical first step."""
        return Plan(n_steps, (n_steps - int(self.afs)) * calls_per_eval, calls_per_eval)

    def init(self, model, x, ts, noise, plan):
        if len(ts) - 1 > self.b.shape[0]:
            raise SolverError(f"{self.name}: the grid has {len(ts) - 1} steps but weights for {self.b.shape[0]}")
        return ()

    def step(self, model, i, t0, t1, x, history, noise, plan):
        sde = model.sde
        s0, s1 = level(sde, t0), level(sde, t1)
        (alpha0, sigma0), alpha1 = sde.marginal(t0), sde.marginal(t1)[0]
        if i == 0 and self.afs:
            norm = alpha0**2 + sigma0**2
            eps, x0 = _c(sigma0 / norm, x) * x, _c(alpha0 / norm, x) * x
        else:
            pred = model.predict(x, t0)
            eps, x0 = pred.eps, pred.x0
        history = ((eps,) + history)[: self.b.shape[1]]
        direction = sum(_c(b, x) * e for b, e in zip(self.b[i], history))
        y_next = x / _c(alpha0, x) + _c(s1 - s0, x) * direction
        return _c(alpha1, x) * y_next, history, x0
