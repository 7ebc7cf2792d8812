"""Ancestral sampling (DDPM): draw x_s from the Gaussian posterior q(x_s | x_t, x0_hat), x0_hat = D(x_t, t).

With alpha_{t|s} = alpha_t / alpha_s and sigma_{t|s}^2 = sigma_t^2 - alpha_{t|s}^2 sigma_s^2, for t0 = t > s = t1:

    x_s = alpha_{t|s} sigma_s^2 / sigma_t^2 x_t + alpha_s sigma_{t|s}^2 / sigma_t^2 x0_hat
          + sqrt(sigma_{t|s}^2 sigma_s^2 / sigma_t^2) z,      z ~ N(0, I).

On a VP SDE this is Ho et al.'s update with beta_i = 1 - alpha_{t|s}^2 and variance beta_tilde; on a VE
SDE it is score_sde's ancestral VE sampler.  Every grid and SDE with Gaussian marginals works; the last
step lands on t_min the same way (its noise has standard deviation below sigma_{t_min}).
"""

from __future__ import annotations

from samplekit.solver import Solver
from samplekit_builtin.gaussian_step import gaussian_step


class DDPM(Solver):
    """Ancestral sampling with the Gaussian posterior step (weak order 1, one network call a step)."""

    name = "ddpm"
    aliases = ("DDPMScheduler",)
    order = 0.5
    stochastic = True
    nfe_per_step = 1
    default_schedule = "uniform"

    def step(self, model, i, t0, t1, x, state, noise, plan):
        pred = model.predict(x, t0)
        post = gaussian_step(model.sde, t0, t1, x)
        return post.mean(x, pred.x0) + post.var.sqrt() * noise.randn_like(x), state, pred.x0
