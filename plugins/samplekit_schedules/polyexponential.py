"""``polyexponential``: polynomial in log-noise (k-diffusion ``get_sigmas_polyexponential``).

    s_i = exp( (1 - i/n)^rho (log s_max - log s_min) + log s_min ),   i = 0..n,

s = sigma_t / alpha_t; rho = 1 (the default, as k-diffusion's) is ``exponential``; rho > 1 puts more
steps at low noise.
"""

from __future__ import annotations

import math

import torch

from samplekit.sde import SDE
from samplekit_schedules._noise import finite_positive, noise_range, steps, times_from_noise


def polyexponential(sde: SDE, n_steps: int, rho: float = 1.0) -> torch.Tensor:
    rho = finite_positive(rho, "rho", "1 is k-diffusion's default; larger puts more steps at low noise")
    n = steps(n_steps)
    s_min, s_max = noise_range(sde)
    ramp = torch.linspace(1.0, 0.0, n + 1, dtype=torch.float64) ** rho
    return times_from_noise(sde, torch.exp(ramp * (math.log(s_max) - math.log(s_min)) + math.log(s_min)))
