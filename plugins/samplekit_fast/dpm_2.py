"""DPM-Solver-2 in the noise level (KDPM2): k-diffusion's ``sample_dpm_2`` without churn.

In the noise level s = sigma_t / alpha_t with y = x / alpha_t and dy/ds = eps (noise_level.py), one
step s_i -> s_{i+1} evaluates eps at the log-midpoint s_m = sqrt(s_i s_{i+1}) (Lu et al. 2022,
DPM-Solver-2 with r = 1/2, written as Karras et al. 2022's midpoint in sigma, as k-diffusion does):

    y_m     = y_i + (s_m - s_i) eps(x_i, t_i) = x0_i + s_m eps_i        (Euler / DDIM to s_m)
    y_{i+1} = y_i + (s_{i+1} - s_i) eps(alpha_m y_m, t_m)

with t_m the time at level s_m; x_{i+1} = alpha_{i+1} y_{i+1}.  Second order, two model calls a step,
so a budget of N calls walks floor(N / 2) steps (default ``schedule="karras"``).  Samplekit's grid
ends at t_min > 0, so unlike k-diffusion's last step to sigma = 0 every step is a DPM-Solver-2 step;
the step from alpha_t = 0 (s_t = inf, no finite midpoint) is the core's DDIM step (one call).
"""

from __future__ import annotations

import torch

from samplekit.solver import Solver
from samplekit_fast.multistep import scalar
from samplekit_fast.noise_level import ddim, level, time_at_level


class DPM2(Solver):
    """DPM-Solver-2 / KDPM2: midpoint in log noise level, two calls a step, second order."""

    name = "dpm_2"
    aliases = ("sample_dpm_2", "KDPM2DiscreteScheduler", "dpm_2")
    order = 2.0
    stochastic = False
    nfe_per_step = 2
    default_schedule = "karras"

    def step(self, model, i, t0, t1, x, state, noise, plan):
        sde = model.sde
        s0, s1 = level(sde, t0), level(sde, t1)
        alpha0, alpha1 = sde.marginal(t0)[0], sde.marginal(t1)[0]
        first = model.predict(x, t0)
        s_mid = torch.sqrt(s0 * s1)
        t_mid = time_at_level(sde, s_mid)
        x_mid = ddim(x, first.x0, first.eps, sde.marginal(t_mid)[0], s_mid)
        eps_mid = model.predict(x_mid, t_mid).eps
        y_next = x / scalar(alpha0, x) + scalar(s1 - s0, x) * eps_mid
        return scalar(alpha1, x) * y_next, state, first.x0
