"""Euler–Maruyama on the reverse SDE (lambda = 0), stepping from t0 down to t1 = t0 - h:

x_{t1} = x_{t0} - h [f(x, t0) - g(t0)^2 s(x, t0)] + g(t0) sqrt(h) z,   z ~ N(0, I).
"""

from __future__ import annotations

from samplekit.reverse import reverse_diffusion, reverse_drift
from samplekit.sde import broadcast_to_batch
from samplekit.solver import Solver


class EulerMaruyama(Solver):
    """Euler–Maruyama on the reverse-time SDE (strong order 1/2, weak order 1)."""

    name = "euler_maruyama"
    order = 0.5
    stochastic = True
    nfe_per_step = 1

    def step(self, model, i, t0, t1, x, state, noise, plan):
        h = t0 - t1
        drift, pred = reverse_drift(model, x, t0, lam=0.0)
        g = broadcast_to_batch(reverse_diffusion(model, t0, lam=0.0), x)
        return x - h * drift + g * h.sqrt() * noise.randn_like(x), state, pred.x0
