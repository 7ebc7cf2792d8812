"""``kl_optimal``: the KL-optimal schedule of Sabour, Fidler & Kreis (2024), "Align Your Steps", App. B
(ComfyUI's ``kl_optimal`` scheduler).

For a data distribution that is a single Dirac delta, the step sizes minimising the KL upper bound of the
DDIM / Euler discretisation are uniform in arctan(s), s = sigma_t / alpha_t:

    s_i = tan( u_i atan(s_min) + (1 - u_i) atan(s_max) ),   u_i = i/n,  i = 0..n.
"""

from __future__ import annotations

import math

import torch

from samplekit.sde import SDE
from samplekit_schedules._noise import noise_range, steps, times_from_noise


def kl_optimal(sde: SDE, n_steps: int) -> torch.Tensor:
    n = steps(n_steps)
    s_min, s_max = noise_range(sde)
    u = torch.linspace(0.0, 1.0, n + 1, dtype=torch.float64)
    return times_from_noise(sde, torch.tan(u * math.atan(s_min) + (1 - u) * math.atan(s_max)))
