"""A discrete-time VP process (DDPM / diffusers) as a continuous-time samplekit SDE.

A network trained on timesteps n = 0, ..., N-1 with x_n = sqrt(abar_n) x0 + sqrt(1 - abar_n) eps
(diffusers' ``alphas_cumprod``) is a VP SDE whose integrated rate B(t) = -log alpha_t^2 is known at
N + 1 points.  The mapping between continuous time and timesteps is

    t = (n + 1) / N,        n = N t - 1,          so t_min = 1/N  (n = 0)  and  T = 1  (n = N-1),

and B is interpolated linearly in t between grid points, from B(0) = 0 (the data):

    B(t_n) = -log abar_n,   B piecewise linear,   beta(t) = B'(t) piecewise constant,
    alpha_t = exp(-B(t)/2),   sigma_t^2 = 1 - exp(-B(t)),   f = -beta(t) x / 2,   g = sqrt(beta(t)).

On the grid (t = t_n) alpha_t^2 equals abar_n exactly, so a solver stepping between grid times meets
the network only at its training timesteps; between them the network receives the fractional
timestep N t - 1 (diffusers' sinusoidal embeddings accept it).  The ``discrete`` schedule gives
the training timesteps, e.g. for ``ddpm`` and ``ddim``:  ``sk.sample(model, "ddim", schedule="discrete")``.
"""

from __future__ import annotations

import torch

from samplekit.checks import positive_int
from samplekit.errors import InvalidArgumentError
from samplekit.sde import SDE, VPSDE, VariancePreserving, as_time

Tensor = torch.Tensor
GRID_SNAP = 1e-3   # |N t - round(N t)| below this (in timesteps) counts as a grid time


class DiscreteVPSDE(VariancePreserving):
    """VP SDE through a discrete ``alphas_cumprod`` grid: timestep n <-> t = (n + 1) / N, log alpha_t
    interpolated linearly in t between grid points (so beta(t) is piecewise constant)."""

    name = "discrete_vp"

    def __init__(self, alphas_cumprod) -> None:
        abar = torch.as_tensor(alphas_cumprod, dtype=torch.float64).flatten()
        if abar.numel() < 2 or not torch.isfinite(abar).all():
            raise InvalidArgumentError("alphas_cumprod must hold at least 2 finite values, one per training timestep")
        if (abar <= 0).any() or (abar >= 1).any() or (abar[1:] >= abar[:-1]).any():
            raise InvalidArgumentError("alphas_cumprod must decrease strictly within (0, 1), as diffusers' "
                             "scheduler.alphas_cumprod does; pass the training schedule's values")
        self.num_timesteps = N = abar.numel()
        super().__init__(T=1.0, t_min=1.0 / N)
        self.alphas_cumprod = abar
        self._B = torch.cat([abar.new_zeros(1), -torch.log(abar)])           # B at t = 0, 1/N, ..., 1
        self._beta = (self._B[1:] - self._B[:-1]) * N                         # piecewise-constant rate

    # --- the t <-> timestep mapping ---------------------------------------------------------------
    def _grid_units(self, t: Tensor) -> Tensor:
        """N t, snapped to the integer within GRID_SNAP of it: a grid time computed in floating point
        ((n + 1) / N * N is not always exactly n + 1, notably in float32) lands exactly on the grid."""
        u = t * self.num_timesteps
        r = u.round()
        return torch.where((u - r).abs() <= GRID_SNAP, r, u)

    def timestep(self, t) -> Tensor:
        """The (fractional) training timestep n = N t - 1 of time t (an exact integer at grid times)."""
        return self._grid_units(as_time(t)) - 1

    def time_of(self, timestep) -> Tensor:
        """t = (n + 1) / N of a training timestep n."""
        return (as_time(timestep) + 1) / self.num_timesteps

    # --- the process ------------------------------------------------------------------------------
    def _segment(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """The grid interval k (t in [k/N, (k+1)/N]) and the position N t - k within it."""
        u = self._grid_units(t)
        k = u.floor().clamp(0, self.num_timesteps - 1)
        return k.long(), u - k

    def B(self, t) -> Tensor:
        """B(t) = -log alpha_t^2, linear in t between grid points."""
        t = as_time(t)
        k, frac = self._segment(t)
        B = self._B.to(dtype=t.dtype, device=t.device)
        return B[k] + frac * (B[k + 1] - B[k])

    def beta(self, t) -> Tensor:
        t = as_time(t)
        k, _ = self._segment(t)
        return self._beta.to(dtype=t.dtype, device=t.device)[k]

    def t_from_log_snr(self, lam) -> Tensor:
        """Exact inverse of the piecewise-linear B: sigma^2 / alpha^2 = e^B - 1 = e^{-2 lambda}."""
        lam = as_time(lam)
        target = torch.log1p(torch.exp(-2 * lam))
        B = self._B.to(dtype=lam.dtype, device=lam.device)
        k = (torch.searchsorted(B, target.reshape(-1).contiguous()) - 1).clamp(0, self.num_timesteps - 1)
        k = k.reshape(target.shape)
        frac = (target - B[k]) / (B[k + 1] - B[k])
        return (k + frac) / self.num_timesteps

    def params(self) -> dict[str, float]:
        return {"N": self.num_timesteps, "abar_0": float(self.alphas_cumprod[0]),
                "abar_last": float(self.alphas_cumprod[-1])}

    # --- equivalence with a continuous VP SDE (for tests and conversions) ----------------------
    @classmethod
    def from_vp(cls, sde: VPSDE, num_timesteps: int = 1000) -> "DiscreteVPSDE":
        """The grid abar_n = alpha^2 of ``sde`` at t = (n + 1) / N, n = 0..N-1 (its T is taken as 1)."""
        t = (torch.arange(num_timesteps, dtype=torch.float64) + 1) / num_timesteps * sde.T
        alpha, _ = sde.marginal(t)
        return cls(alpha ** 2)


def discrete_timesteps(sde: SDE, n_steps: int, spacing: str = "linspace") -> Tensor:
    """The training timesteps of a ``DiscreteVPSDE`` as a grid from T (n = N-1) down to t_min (n = 0):
    ``linspace`` rounds n_i = (N-1)(1 - i/n); ``trailing`` takes n_i = N-1 - round(i (N-1) / n)
    (the same grid, written as diffusers' spacing names it); ``leading`` uses steps of N // n from 0."""
    if not isinstance(sde, DiscreteVPSDE):
        raise InvalidArgumentError(f"schedule 'discrete' needs a DiscreteVPSDE (a model loaded from a discrete-time "
                         f"checkpoint); {sde!r} is continuous: use schedule='uniform' or 'karras'")
    n, N = positive_int(n_steps, "n_steps"), sde.num_timesteps
    if n > N - 1:
        raise InvalidArgumentError(f"n_steps={n} exceeds the {N - 1} intervals of the training grid; lower nfe")
    if spacing in ("linspace", "trailing"):
        steps = torch.round(torch.linspace(N - 1, 0, n + 1, dtype=torch.float64))
    elif spacing == "leading":
        stride = (N - 1) // n
        steps = torch.cat([torch.tensor([N - 1.0], dtype=torch.float64),
                           torch.arange(n - 1, -1, -1, dtype=torch.float64) * stride])
    else:
        raise InvalidArgumentError(f"spacing={spacing!r} is unknown; use 'linspace', 'trailing' or 'leading'")
    return sde.time_of(steps)
