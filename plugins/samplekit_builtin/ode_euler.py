"""Euler on the probability-flow ODE dx/dt = F(x, t) = f(x, t) - g(t)^2 s(x, t) / 2, from t0 to t1 < t0:

    x_{t1} = x_{t0} + (t1 - t0) F(x_{t0}, t0).

Default grid: ``karras`` (EDM's rho = 7 grid in the noise level sigma_t / alpha_t).  It is defined by the
marginals alone, so the same default suits VP, sub-VP, VE, OU and EDM SDEs (uniform-in-t wastes steps at
large noise on EDM).
"""

from __future__ import annotations

from samplekit.reverse import probability_flow_drift
from samplekit.solver import Solver


class ODEEuler(Solver):
    """Explicit Euler on the probability-flow ODE (order 1, one network call a step)."""

    name = "ode_euler"
    order = 1.0
    stochastic = False
    nfe_per_step = 1
    default_schedule = "karras"

    def step(self, model, i, t0, t1, x, state, noise, plan):
        drift, pred = probability_flow_drift(model, x, t0)
        return x + (t1 - t0).to(x.dtype) * drift, state, pred.x0
