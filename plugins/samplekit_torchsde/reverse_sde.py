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

import bisect
import math

import torch
from torchsde import BaseBrownian

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


class StepBrownian(BaseBrownian):
    """A torchsde Brownian motion on a fixed grid s_0 < ... < s_n, its increments from samplekit's NoiseSource.

    samplekit drives one torchsde step per grid step (``sdeint_step``), so torchsde asks only for the
    increment over a whole step [s_i, s_{i+1}], h_i = s_{i+1} - s_i, and (SRK) its space-time Levy area:
        W_i = sqrt(h_i) z,   H_i = sqrt(h_i / 12) z',   U_i = h_i (W_i / 2 + H_i)  (torchsde's ``return_U``),
    z, z' ~ N(0, I) drawn from the NoiseSource when step i is first asked for (steps are visited in order,
    so the draws are reproducible).  With one seed per sample, sample b's increments come from sample b's
    own stream, so a sample does not depend on its batch (a shared torchsde BrownianInterval cannot give
    that: its tree of increments is drawn for the whole batch from one seed).  A query that is not one
    grid step is an error, not a silent re-draw."""

    def __init__(self, s_grid, noise, like: torch.Tensor, levy_area: str = "none") -> None:
        self._grid = [float(s) for s in s_grid]
        self._noise, self._levy = noise, levy_area
        self._shape = (like.shape[0], like[0].numel())
        self._dtype, self._device = like.dtype, like.device
        self._last = None  # (i, W, H) of the step asked for last

    def _step_index(self, ta, tb) -> int:
        ta, tb = float(ta), float(tb)
        i = bisect.bisect_left(self._grid, ta - 1e-12 * max(1.0, abs(ta)))
        if i + 1 >= len(self._grid) or not (
            math.isclose(self._grid[i], ta, rel_tol=1e-9, abs_tol=1e-12)
            and math.isclose(self._grid[i + 1], tb, rel_tol=1e-9, abs_tol=1e-12)
        ):
            raise RuntimeError(
                f"torchsde asked for the Brownian increment over [{ta:g}, {tb:g}], not one grid step "
                "of this StepBrownian; samplekit drives one torchsde step per grid step"
            )
        return i

    def __call__(self, ta, tb=None, return_U=False, return_A=False):
        if tb is None or return_A:
            raise RuntimeError("StepBrownian gives increments W(ta, tb) (and U), not W(t) or the Levy area A")
        i = self._step_index(ta, tb)
        if self._last is None or self._last[0] != i:
            h = self._grid[i + 1] - self._grid[i]
            W = self._noise.randn(self._shape[1:], dtype=self._dtype) * math.sqrt(h)
            H = (
                self._noise.randn(self._shape[1:], dtype=self._dtype) * math.sqrt(h / 12)
                if self._levy != "none"
                else None
            )
            self._last = (i, W, H)
        _, W, H = self._last
        if return_U:
            h = self._grid[i + 1] - self._grid[i]
            return W, h * (0.5 * W + H)
        return W

    def __repr__(self) -> str:
        return f"StepBrownian(steps={len(self._grid) - 1}, shape={self._shape}, levy_area={self._levy!r})"

    @property
    def dtype(self):
        return self._dtype

    @property
    def device(self):
        return self._device

    @property
    def shape(self):
        return self._shape

    @property
    def levy_area_approximation(self):
        return self._levy


def sdeint_step(sde: ReverseSDE, y, s_grid, i: int, bm, method: str, **kwargs):
    """One step of ``method`` from s_i to s_{i+1}: one sdeint call, one internal step.

    dt is the whole span (>= the step), so torchsde's single step lands exactly on s_{i+1}
    (dt = s_{i+1} - s_i could round to a hair short and add a tiny second step).
    torchsde's shape check draws from the global RNG; fork_rng keeps the user's stream untouched.
    """
    import torchsde

    devices = [y.device] if y.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        return torchsde.sdeint(sde, y, s_grid[i : i + 2], bm=bm, method=method, dt=s_grid[-1] - s_grid[0], **kwargs)
