"""Fixed-step torchsde methods on the reverse SDE (lambda = 0), one sdeint call per grid step.

In forward time s = T - t (see ``reverse_sde``), each step integrates

    dY = -[f(Y, t) - g(t)^2 s(Y, t)] ds + g(t) dW_s,   t = T - s,   from s_i = T - t_i to s_{i+1},

with one step of the torchsde method, driven by a ``StepBrownian`` whose increments are drawn from the
NoiseSource (per sample with one seed per sample), so the grid, the step and the noise are samplekit's
and the loop, NFE accounting, callbacks and finiteness checks stay in the core.
"""

from __future__ import annotations

from samplekit.solver import Solver

from samplekit_torchsde.reverse_sde import ReverseSDE, StepBrownian, sdeint_step


class TorchsdeStep(Solver):
    """Base of the one-step-per-grid-step torchsde solvers; a subclass names its torchsde ``method``."""

    method = "euler"
    levy_area = "none"
    stochastic = True

    def init(self, model, x, ts, noise):
        s = model.sde.T - ts.to(device="cpu", dtype=ts.dtype)
        flat = x.reshape(x.shape[0], -1)
        return ReverseSDE(model, x.shape[1:]), StepBrownian(s, noise, flat, self.levy_area), s

    def step(self, model, i, t0, t1, x, state, noise):
        sde, bm, s = state
        y0 = x.reshape(x.shape[0], -1)
        ys = sdeint_step(sde, y0, s, i, bm, self.method)
        pred = sde.prediction_at(y0, s[i])
        return ys[-1].reshape(x.shape), state, None if pred is None else pred.x0


class Euler(TorchsdeStep):
    """Euler-Maruyama, torchsde ``euler``: Y_1 = Y_0 + F(Y_0, s_0) h + G(s_0) dW (strong order 1 for
    additive noise, weak order 1); one network call a step."""

    name, method, order, nfe_per_step = "sde_euler", "euler", 1.0, 1


class Milstein(TorchsdeStep):
    """Milstein (Ito), torchsde ``milstein``: Euler-Maruyama plus G G' (dW^2 - h) / 2, which is zero for the
    reverse SDE's additive noise, so it takes the Euler-Maruyama step; one network call a step."""

    name, method, order, nfe_per_step = "sde_milstein", "milstein", 1.0, 1


class SRK(TorchsdeStep):
    """Stochastic Runge-Kutta SRA1 (Rossler 2010) for additive noise, torchsde ``srk``:
    two drift stages, at s_0 and s_0 + 3h/4, with the space-time Levy area of the Brownian motion
    (strong order 1.5); two network calls a step."""

    name, method, order, nfe_per_step = "sde_srk", "srk", 1.5, 2
    levy_area = "space-time"


SOLVERS = (Euler, Milstein, SRK)
