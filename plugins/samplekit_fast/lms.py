"""Linear multistep (LMS): variable-step Adams-Bashforth (Hairer, Norsett & Wanner 1993, Sec. III.5) in the
noise level of Karras et al. 2022, k-diffusion's ``sample_lms``.

In the noise level s = sigma_t / alpha_t with y = x / alpha_t and dy/ds = eps (noise_level.py), step i
interpolates eps through the last k = min(order, i + 1) outputs eps_i, ..., eps_{i-k+1} (at s_i, ...,
s_{i-k+1}) by the Lagrange polynomial p and integrates it exactly:

    y_{i+1} = y_i + int_{s_i}^{s_{i+1}} p(s) ds = y_i + sum_m w_m eps_{i-m},
    w_m = int_{s_i}^{s_{i+1}} L_m(s) ds,   L_m the Lagrange basis polynomials of the nodes,

(k-diffusion's ``linear_multistep_coeff``, which integrates L_m with scipy's quad; diffusers'
LMSDiscreteScheduler does the same on its discrete sigmas).  Order ``solver_order`` (default 4) on any
smooth grid, one call a step (default ``schedule="karras"``).  The step from s = inf (alpha = 0,
rectified flow at T) is the core's DDIM step, and its node is not kept.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from samplekit.solver import Solver
from samplekit_fast.noise_level import level, multistep_update, quadrature_weights


class LMS(Solver):
    """Linear multistep of order ``solver_order`` (1-4) in the noise level: one call a step."""

    name = "lms"
    aliases = ("sample_lms", "LMSDiscreteScheduler", "lms")
    order = 4.0
    stochastic = False
    nfe_per_step = 1
    default_schedule = "karras"
    steps_to_zero = True  # its last step onto s = 0 is an LMS step, as k-diffusion's

    def __init__(self, solver_order: Literal[1, 2, 3, 4] = 4, **base) -> None:
        super().__init__(**base)
        self.solver_order = int(solver_order)

    def capabilities(self):
        return replace(super().capabilities(), order=float(self.solver_order))

    def init(self, model, x, ts, noise, plan):
        return ()  # (s, eps) of earlier steps, newest first

    def step(self, model, i, t0, t1, x, history, noise, plan):
        sde = model.sde
        s0, s1 = level(sde, t0), level(sde, t1)
        pred = model.predict(x, t0)
        history = ((s0, pred.eps),) + history[: self.solver_order - 1]
        nodes = [s - s0 for s, _ in history]
        ds = s1 - s0
        weights = quadrature_weights(nodes, lambda c: [ds * (ds / c) ** k / (k + 1) for k in range(len(nodes))])
        x_next = multistep_update(x, pred.x0, [e for _, e in history], weights, sde.marginal(t1)[0], s1)
        return x_next, history, pred.x0
