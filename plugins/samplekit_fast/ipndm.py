"""iPNDM: improved pseudo-numerical methods, fixed-coefficient Adams-Bashforth in the noise level.

Zhang & Chen 2023 (DEIS, ICLR; Appendix, "iPNDM": PNDM's linear multistep without its Runge-Kutta
warm-up, lower orders instead), as ComfyUI's ``sample_ipndm``.  In the noise level s = sigma_t / alpha_t
with y = x / alpha_t and dy/ds = eps (noise_level.py), step i with eps_i = eps(x_i, t_i):

    y_{i+1} = y_i + (s_{i+1} - s_i) sum_m b_m eps_{i-m},   k = min(max_order, i + 1),
    k = 1: b = [1]              k = 2: b = [3, -1] / 2
    k = 3: b = [23, -16, 5] / 12    k = 4: b = [55, -59, 37, -9] / 24,

the Adams-Bashforth weights of a uniform grid used whatever the spacing.  On any smooth non-uniform
grid the fixed weights miss the step-ratio terms of the variable-step rule by O(h^3) a step, and the
lower-order warm-up (an Euler first step) errs by O(h^2) once, so the method is second order: declared
order 2, fitted on the default ``schedule="karras"`` (its benefit over Adams-Bashforth-2 is a smaller
constant, not the order).  One call a step.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from typing import Literal

from samplekit.solver import Solver
from samplekit_fast.noise_level import level, multistep_update

ADAMS_BASHFORTH = {
    1: (1,),
    2: (Fraction(3, 2), Fraction(-1, 2)),
    3: (Fraction(23, 12), Fraction(-16, 12), Fraction(5, 12)),
    4: (Fraction(55, 24), Fraction(-59, 24), Fraction(37, 24), Fraction(-9, 24)),
}


class IPNDM(Solver):
    """iPNDM: Adams-Bashforth (orders 1..max_order, uniform-grid weights) on eps in the noise level."""

    name = "ipndm"
    aliases = ("sample_ipndm", "ipndm")
    order = 2.0
    stochastic = False
    nfe_per_step = 1
    default_schedule = "karras"

    def __init__(self, max_order: Literal[1, 2, 3, 4] = 4, **base) -> None:
        super().__init__(**base)
        self.max_order = int(max_order)

    def capabilities(self):
        return dataclasses.replace(super().capabilities(), order=float(min(self.max_order, 2)))

    def init(self, model, x, ts, noise, plan):
        return ()  # eps of earlier steps, newest first

    def step(self, model, i, t0, t1, x, history, noise, plan):
        sde = model.sde
        s0, s1 = level(sde, t0), level(sde, t1)
        pred = model.predict(x, t0)
        history = ((pred.eps,) + history)[: self.max_order]
        weights = [(s1 - s0) * float(b) for b in ADAMS_BASHFORTH[len(history)]]
        x_next = multistep_update(x, pred.x0, list(history), weights, sde.marginal(t1)[0], s1)
        return x_next, history, pred.x0
