"""``sgm_uniform``: uniform in the model's timesteps, as Stability's sgm repository and ComfyUI's
``sgm_uniform`` scheduler build it (``normal_scheduler(..., sgm=True)``).

ComfyUI takes n + 1 timesteps uniform from the first timestep to the last, drops the last, and ends with
a step to sigma = 0.  samplekit's grids end at the SDE's t_min instead of at sigma = 0, so the grid is

    t_i = T + i/n (t_min - T),   i = 0..n-1,   t_n = t_min,

in the SDE's own time (a discrete model's timesteps are affine in it, ``DiscreteVPSDE.time_of``): the same
points as ``uniform``, registered under ComfyUI's name.  (ComfyUI's ``normal`` differs only in that its
last point before sigma = 0 is sigma_min; here both end at t_min.)
"""

from __future__ import annotations

import torch

from samplekit.sde import SDE
from samplekit_schedules._noise import steps


def sgm_uniform(sde: SDE, n_steps: int) -> torch.Tensor:
    n = steps(n_steps)
    ts = torch.linspace(sde.T, sde.t_min, n + 1, dtype=torch.float64)
    ts[-1] = sde.t_min
    return ts
