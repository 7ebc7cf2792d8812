"""Euler on the probability-flow ODE dx/dt = F(x, t) = f(x, t) - g(t)^2 s(x, t) / 2, from t0 to t1 < t0:

    x_{t1} = x_{t0} + (t1 - t0) F(x_{t0}, t0).

Default grid: ``logsnr`` (uniform in lambda_t = log(alpha_t / sigma_t)).  It is defined by the marginals
alone, so the same default is sensible on VP, sub-VP, VE, OU and EDM SDEs; the uniform-in-t grid is
good on VP and score_sde's VE but wastes steps at large noise on EDM (sigma_t = t).
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
    default_schedule = "logsnr"

    def step(self, model, i, t0, t1, x, state, noise):
        drift, pred = probability_flow_drift(model, x, t0)
        return x + (t1 - t0).to(x.dtype) * drift, state, pred.x0
