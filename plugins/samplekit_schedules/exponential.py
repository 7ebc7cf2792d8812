"""``exponential``: log-linear in the noise level (k-diffusion ``get_sigmas_exponential``).

    s_i = exp( log s_max + i/n (log s_min - log s_max) ),   i = 0..n,

with s = sigma_t / alpha_t.  Since log s = -lambda_t this is the grid uniform in log-SNR (DPM-Solver's
'logSNR', samplekit's ``logsnr``); registered under k-diffusion's / ComfyUI's name.
"""

from __future__ import annotations

import torch

from samplekit.sde import SDE
from samplekit_schedules._noise import noise_range, steps, times_from_noise


def exponential(sde: SDE, n_steps: int) -> torch.Tensor:
    n = steps(n_steps)
    s_min, s_max = noise_range(sde)
    log_s = torch.linspace(
        torch.tensor(s_max, dtype=torch.float64).log().item(),
        torch.tensor(s_min, dtype=torch.float64).log().item(),
        n + 1,
        dtype=torch.float64,
    )
    return times_from_noise(sde, log_s.exp())
