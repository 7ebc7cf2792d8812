"""Linear multistep (LMS): variable-step Adams-Bashforth (Hairer, Norsett & Wanner 1993, Sec. III.5) in the
noise level of Karras et al. 2022, k-diffusion's ``sample_lms``.

In the noise level s = sigma_t / alpha_t with y = x / alpha_t and dy/ds = eps (noise_level.py), step i
interpolates eps through the last k = min(order, i + 1) outputs eps_i, ..., eps_{i-k+1} (at s_i, ...,
s_{i-k+1}) by the Lagrange polynomial p and integrates it exactly:

    y_{i+1} = y_i + int_{s_i}^{s_{i+1}} p(s) ds = y_i + sum_m w_m eps_{i-m},
    w_m = int_{s_i}^{s_{i+1}} L_m(s) ds,   L_m the Lagrange basis polynomials of the nodes,

(k-diffusion's ``linear_multistep_coeff``, which integrates L_m with scipy's quad; diffusers'
LMSDiscreteScheduler does the same on its discrete sigmas).  Order ``order`` (default 4) on any smooth
grid, one call a step (default ``schedule="karras"``).  A node at s = inf (alpha = 0, rectified flow
at T) has a vanishing Lagrange weight in the limit and is left out.
"""

from __future__ import annotations

import torch

from samplekit.solver import Solver, SolverError
from samplekit_fast.noise_level import OrderOption, ddim, level, multistep_update, quadrature_weights


class LMS(OrderOption, Solver):
    """Linear multistep of order ``order`` (1-4) in the noise level: one call a step."""

    name = "lms"
    aliases = ("sample_lms", "LMSDiscreteScheduler", "lms")
    order = 4.0
    stochastic = False
    nfe_per_step = 1
    default_schedule = "karras"

    def __init__(self, order: int = 4, **base) -> None:
        super().__init__(**base)
        if isinstance(order, bool) or order not in (1, 2, 3, 4):
            raise SolverError(f"solver {self.name!r}: order={order!r} must be 1, 2, 3 or 4")
        self.solver_order = int(order)

    def init(self, model, x, ts, noise):
        return ()  # (s, eps) of earlier steps, newest first

    def step(self, model, i, t0, t1, x, history, noise):
        sde = model.sde
        s0, s1 = level(sde, t0), level(sde, t1)
        pred = model.predict(x, t0)
        history = ((s0, pred.eps),) + tuple(h for h in history if torch.isfinite(h[0]))[: self.solver_order - 1]
        if not torch.isfinite(s0):
            return ddim(x, pred.x0, pred.eps, sde.marginal(t1)[0], s1), history, pred.x0
        nodes = [s - s0 for s, _ in history]
        ds = s1 - s0
        weights = quadrature_weights(nodes, lambda c: [ds * (ds / c) ** k / (k + 1) for k in range(len(nodes))])
        x_next = multistep_update(x, pred.x0, [e for _, e in history], weights, sde.marginal(t1)[0], s1)
        return x_next, history, pred.x0
