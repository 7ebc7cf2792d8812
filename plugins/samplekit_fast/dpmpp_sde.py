"""DPM-Solver++ SDE (k-diffusion ``sample_dpmpp_sde``; ComfyUI ``dpmpp_sde``): a stochastic
singlestep second-order solver, data prediction, with an intermediate point at ratio r (default 1/2).

Lu et al. (2022), "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion Probabilistic Models",
singlestep DPM-Solver++(2S) with the ancestral split of ``samplekit_fast.ancestral`` on each stage
(Karras et al. 2022 / k-diffusion).  A step t -> s, h = lambda_s - lambda_t, lambda_m = lambda_t + r h,
E_{a->b}^{scale}(x, D) = scale [(e^{-lambda_b}/sigma_a) x + (1 - e^{lambda_a - lambda_b}) D]:

    (lambda_d1, c1) = split(lambda_t -> lambda_m),   x_m = E_{t->d1}^{alpha_m}(x_t, D) + s_noise sigma_m c1 z_1,
    D_m = x0(x_m, t(lambda_m)),    D' = (1 - 1/(2r)) D + 1/(2r) D_m,
    (lambda_d2, c2) = split(lambda_t -> lambda_s),   x_s = E_{t->d2}^{alpha_s}(x_t, D') + s_noise sigma_s c2 z_2.

The two stage noises are increments of one Brownian motion in the noise level s~ = sigma/alpha, as
k-diffusion's BrownianTree gives them: z_1 = w_1, z_2 = sqrt(q) w_1 + sqrt(1 - q) w_2 with
q = (s~_t - s~_m) / (s~_t - s~_s) and w_1, w_2 independent draws from the NoiseSource (so per-sample
seeds are honoured).  Two model calls per step; a step from alpha_t = 0 (lambda_t = -inf, rectified
flow at T) is the first-order ancestral step (one call).  eta = 0: deterministic, order 2.
"""

from __future__ import annotations

import torch

from samplekit.solver import SolverError
from samplekit_fast.ancestral import NoisySolver, ancestral_split, scaled_first_order
from samplekit_fast.multistep import Interval, scalar


class DPMSolverPPSDE(NoisySolver):
    """DPM-Solver++ SDE, singlestep with ratio r (options eta, s_noise, r)."""

    name = "dpmpp_sde"
    aliases = ("sample_dpmpp_sde", "k_dpmpp_sde", "DPM++ SDE")
    order = 1.0
    deterministic_order = 2.0
    nfe_per_step = 2
    default_schedule = "karras"

    def __init__(self, eta: float = 1.0, s_noise: float = 1.0, r: float = 0.5, **base) -> None:
        super().__init__(eta=eta, s_noise=s_noise, **base)
        r = float(r)
        if not 0 < r <= 1:
            raise SolverError(
                f"solver {self.name!r}: r={r!r} must lie in (0, 1] (the intermediate point's "
                "fraction of the step in log-SNR; 1/2 is k-diffusion's default)"
            )
        self.r = r

    def step(self, model, i, t0, t1, x, state, noise, plan):
        sde = model.sde
        iv = Interval.of(sde, t0, t1)
        lam_d2, c2 = ancestral_split(iv.lam_t, iv.lam_s, self.eta)
        x0 = model.predict(x, t0).x0
        w1 = noise.randn_like(x) if self.noisy else None
        d = x0
        if bool(torch.isfinite(iv.lam_t)):
            lam_m = iv.lam_t + self.r * iv.h
            t_m = sde.time_at_log_snr(lam_m)
            alpha_m, sigma_m = sde.marginal(t_m)
            lam_d1, c1 = ancestral_split(iv.lam_t, lam_m, self.eta)
            x_m = scaled_first_order(x, x0, iv.lam_t, iv.sigma_t, lam_d1, alpha_m)
            if self.noisy:
                x_m = x_m + scalar(sigma_m * c1 * self.s_noise, x) * w1
            fac = 1 / (2 * self.r)
            d = (1 - fac) * x0 + fac * model.predict(x_m, t_m).x0
            q = torch.expm1(iv.lam_t - lam_m) / torch.expm1(iv.lam_t - iv.lam_s)
        else:
            q = torch.ones_like(iv.lam_s)
        x_next = scaled_first_order(x, d, iv.lam_t, iv.sigma_t, lam_d2, iv.alpha_s)
        if self.noisy:
            z2 = scalar(q.sqrt(), x) * w1 + scalar((1 - q).sqrt(), x) * noise.randn_like(x)
            x_next = x_next + scalar(iv.sigma_s * c2 * self.s_noise, x) * z2
        return x_next, state, x0
