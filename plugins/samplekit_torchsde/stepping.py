"""Fixed-step torchsde methods on the reverse SDE (lambda = 0), one sdeint call per grid step.

In forward time s = T - t (see ``reverse_sde``), each step integrates

    dY = -[f(Y, t) - g(t)^2 s(Y, t)] ds + g(t) dW_s,   t = T - s,   from s_i = T - t_i to s_{i+1},

with one step of the torchsde method, driven by a ``StepBrownian`` whose increments are drawn from the
NoiseSource (per sample with one seed per sample), so the grid, the step and the noise are samplekit's
and the loop, NFE accounting, callbacks and finiteness checks stay in the core.
One solver a module beside this base: ``euler``, ``milstein``, ``srk``.
"""

from __future__ import annotations

from samplekit.solver import Solver
from samplekit_torchsde.reverse_sde import ReverseSDE, StepBrownian, sdeint_step


class TorchsdeStep(Solver):
    """Base of the one-step-per-grid-step torchsde solvers; a subclass names its torchsde ``method``."""

    method = "euler"
    levy_area = "none"
    stochastic = True

    def init(self, model, x, ts, noise, plan):
        s = model.sde.T - ts.to(device="cpu", dtype=ts.dtype)
        flat = x.reshape(x.shape[0], -1)
        return ReverseSDE(model, x.shape[1:]), StepBrownian(s, noise, flat, self.levy_area), s

    def step(self, model, i, t0, t1, x, state, noise, plan):
        sde, bm, s = state
        y0 = x.reshape(x.shape[0], -1)
        ys = sdeint_step(sde, y0, s, i, bm, self.method)
        pred = sde.prediction_at(y0, s[i])
        return ys[-1].reshape(x.shape), state, None if pred is None else pred.x0
