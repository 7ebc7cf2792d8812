"""Heun (explicit trapezoid) on the probability-flow ODE dx/dt = F(x, t) = f(x, t) - g(t)^2 s(x, t) / 2:

    d0 = F(x_{t0}, t0),   x' = x_{t0} + h d0,   d1 = F(x', t1),   x_{t1} = x_{t0} + h (d0 + d1) / 2,

with h = t1 - t0 < 0.  Pure Heun on every step, including the last one to t_min (EDM switches to
Euler there to save a call when its grid ends at sigma = 0; here t_min > 0, so the correction is
well defined and keeps order 2).  Default grid: ``karras``, as for ``ode_euler``.
"""

from __future__ import annotations

from samplekit.reverse import probability_flow_drift
from samplekit.solver import Solver


class ODEHeun(Solver):
    """Heun's method on the probability-flow ODE (order 2, two network calls a step)."""

    name = "ode_heun"
    order = 2.0
    stochastic = False
    nfe_per_step = 2
    default_schedule = "karras"

    def step(self, model, i, t0, t1, x, state, noise, plan):
        h = (t1 - t0).to(x.dtype)
        d0, pred = probability_flow_drift(model, x, t0)
        d1, _ = probability_flow_drift(model, x + h * d0, t1)
        return x + h * (d0 + d1) / 2, state, pred.x0
