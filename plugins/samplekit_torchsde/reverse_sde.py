"""The reverse SDE as torchsde sees it: forward time s = T - t, flattened state, counted drift calls.

With Y_s = X_{T - s}, the reverse SDE dX = [f(X, t) - g(t)^2 s(X, t)] dt + g(t) dW_bar (t decreasing) is

    dY = F(Y, s) ds + G(s) dW_s,   F(y, s) = -[f(y, t) - g(t)^2 s(y, t)],   G(s) = g(t),   t = T - s,

integrated by torchsde for s from 0 to T - t_min.  The noise is additive (G does not depend on y),
so the Ito and Stratonovich readings of it coincide and Milstein's correction G G' vanishes.

torchsde's ``sdeint`` evaluates the drift once at (s0, y0) to check shapes before it solves.  The
last evaluation is memoised (keyed on the state tensor itself and the time), so a method whose first
stage is that same point pays nothing for the check; ``shape_probe_at`` marks a state at which the
check is answered with zeros (for reversible Heun, which never evaluates the drift at y0).
"""

from __future__ import annotations

import torch

from samplekit.reverse import reverse_diffusion, reverse_drift


class ReverseSDE:
    """A torchsde SDE object (``f``, ``g`` / ``g_prod``) for the reverse SDE of ``model`` in forward time s."""

    def __init__(self, model, shape, noise_type: str = "additive", sde_type: str = "ito") -> None:
        self.model, self.shape = model, tuple(shape)
        self.T = model.sde.T
        self.noise_type, self.sde_type = noise_type, sde_type
        self._memo = None  # (y, s, drift, prediction) of the last network call
        self.shape_probe_at = None
        if noise_type == "additive":
            self.g_prod = self._g_prod
        elif noise_type == "diagonal":
            self.g = self._g_diagonal
        else:
            raise ValueError(f"noise_type={noise_type!r}: the reverse SDE's noise is additive or diagonal")

    def _t(self, s):
        return self.T - s

    def f(self, s, y):
        if y is self.shape_probe_at:  # sdeint's shape check; its value is discarded (see module doc)
            self.shape_probe_at = None
            return torch.zeros_like(y)
        memo = self._memo
        if memo is not None and memo[0] is y and (memo[1] is s or float(memo[1]) == float(s)):
            return memo[2]
        drift, pred = reverse_drift(self.model, y.reshape(-1, *self.shape), self._t(s), lam=0.0)
        out = -drift.reshape(y.shape)
        self._memo = (y, s, out, pred)
        return out

    def prediction_at(self, y, s):
        """The network's prediction at (y, s) if it was the last evaluation, else None (no new call)."""
        memo = self._memo
        if memo is not None and memo[0] is y and float(memo[1]) == float(s):
            return memo[3]
        return None

    def diffusion(self, s, y):
        """G(s) = g(T - s), a scalar tensor in y's dtype and device."""
        return reverse_diffusion(self.model, self._t(s), lam=0.0).to(dtype=y.dtype, device=y.device)

    def _g_prod(self, s, y, v):
        return self.diffusion(s, y) * v

    def _g_diagonal(self, s, y):
        return self.diffusion(s, y).expand(y.shape)


def brownian_motion(x, s_grid, seed: int, levy_area: str = "none"):
    """A seeded torchsde BrownianInterval over [s_0, s_n] for the flattened batch x, queried on s_grid."""
    import torchsde

    span = s_grid[-1] - s_grid[0]
    return torchsde.BrownianInterval(t0=s_grid[0], t1=s_grid[-1], size=(x.shape[0], x[0].numel()), dtype=x.dtype,
                                     device=x.device, entropy=seed, dt=span / (len(s_grid) - 1),
                                     levy_area_approximation=levy_area)


def sdeint_step(sde: ReverseSDE, y, s_grid, i: int, bm, method: str, **kwargs):
    """One step of ``method`` from s_i to s_{i+1}: one sdeint call, one internal step.

    dt is the whole span (>= the step), so torchsde's single step lands exactly on s_{i+1}
    (dt = s_{i+1} - s_i could round to a hair short and add a tiny second step).
    torchsde's shape check draws from the global RNG; fork_rng keeps the user's stream untouched.
    """
    import torchsde

    devices = [y.device] if y.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        return torchsde.sdeint(sde, y, s_grid[i:i + 2], bm=bm, method=method, dt=s_grid[-1] - s_grid[0], **kwargs)
