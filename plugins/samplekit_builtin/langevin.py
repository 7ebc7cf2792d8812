"""Unadjusted Langevin dynamics on the fixed score at t = t_min, from the prior sample x_T:

    x <- x + e s(x, t_min) + sqrt(2 e) z,   z ~ N(0, I),   e = ``step_size``,  one network call a step.

Included for completeness, as the baseline that annealing improves on: it mixes poorly between modes.
Started from the broad prior, each sample falls into the basin it lands in and stays there, so the mode
weights follow the basins' sizes rather than the target's weights, and a fixed e leaves an O(e) bias.
The grid is used only to count steps (every step is at t_min); samples are at t_min.
"""

from __future__ import annotations

import math

from samplekit.solver import Solver, SolverError


class Langevin(Solver):
    """Plain unadjusted Langevin at t_min (not a diffusion sampler; a baseline)."""

    name = "langevin"
    order = 0.0  # a fixed step leaves an O(e) bias, and mode weights are not recovered
    stochastic = True
    nfe_per_step = 1
    samples_target = False  # see the module docstring; proven instead against the exact ULA stationary law

    def __init__(self, step_size: float = 1e-3, **base) -> None:
        super().__init__(**base)
        if not (math.isfinite(float(step_size)) and float(step_size) > 0):
            raise SolverError(
                f"langevin: step_size={step_size!r} must be a positive number, small against the "
                "target's narrowest variance (e.g. 1e-3)"
            )
        self.step_size = float(step_size)

    def step(self, model, i, t0, t1, x, state, noise, plan):
        e = self.step_size
        pred = model.predict(x, model.sde.t_min)
        return x + e * pred.score + math.sqrt(2 * e) * noise.randn_like(x), state, pred.x0
