"""The forward-noised observation: what the observed coordinates look like at time t.

Given y, the observed coordinates z_o = V^T x (see ``observation``) satisfy ybar = z_o + tau n.
Treating z_o | y as N(ybar, tau^2) (exact when tau = 0; with noise this is the flat-prior
posterior of the observed coordinates, which ignores what the prior says about them — its
bias is measured in benchmarks/conditioning), the forward process gives
    z_o(t) | y ~ N(alpha_t ybar, sigma_t^2 + alpha_t^2 tau^2).
Every conditioning method in this package uses this one law.
"""

from __future__ import annotations

import torch

from samplekit.conditioning.observation import LinearObservation
from samplekit.noise import NoiseSource
from samplekit.sde import SDE, as_time

Tensor = torch.Tensor


def observed_law(observation: LinearObservation, sde: SDE, t, like: Tensor) -> tuple[Tensor, Tensor]:
    """Mean (r,) or (B, r) and variance of z_o(t) | y, in ``like``'s dtype and device."""
    alpha, sigma = sde.marginal(as_time(t, like))
    if alpha.ndim == 1:
        alpha, sigma = alpha[:, None], sigma[:, None]
    ybar = observation.ybar.to(dtype=like.dtype, device=like.device)
    tau = observation.tau.to(dtype=like.dtype, device=like.device)
    return alpha * ybar, sigma * sigma + alpha * alpha * tau * tau


def replace_observed(observation: LinearObservation, sde: SDE, x: Tensor, t, noise: NoiseSource) -> Tensor:
    """x with its observed coordinates replaced by a fresh draw of z_o(t) | y (score_sde's replacement)."""
    _, z_free = observation.split(x)
    mean, var = observed_law(observation, sde, t, x)
    z_obs = mean + var.sqrt() * noise.randn((observation.r,), dtype=x.dtype).to(x.device)
    return observation.merge(z_obs, z_free)


def forward_jump(sde: SDE, x: Tensor, t_from, t_to, noise: NoiseSource) -> Tensor:
    """A draw of x_{t_to} | x_{t_from} for t_to > t_from:
    (alpha_to/alpha_from) x + sqrt(sigma_to^2 - r^2 sigma_from^2) z, r = alpha_to/alpha_from."""
    a0, s0 = sde.marginal(as_time(t_from, x))
    a1, s1 = sde.marginal(as_time(t_to, x))
    ratio = a1 / a0
    std = (s1 * s1 - ratio * ratio * s0 * s0).clamp_min(0).sqrt()
    return ratio * x + std * noise.randn_like(x)
