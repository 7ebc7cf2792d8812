"""DPM-Solver-2 with ancestral noise (k-diffusion ``sample_dpm_2_ancestral``; diffusers
``KDPM2AncestralDiscreteScheduler``).

Lu et al. (2022), "DPM-Solver", second-order midpoint step in the noise level s = sigma / alpha
(Karras et al. 2022, Algorithm 2 with DPM-Solver-2's geometric midpoint), plus the ancestral split of
``samplekit_fast.ancestral``.  A step t -> s, with D = x0(x_t, t) and lambda_down, c_up from the split:

    lambda_mid = (lambda_t + lambda_down) / 2,  t_mid = t(lambda_mid),
    x_mid = alpha_mid [ (e^{-lambda_mid} / sigma_t) x_t + (1 - e^{lambda_t - lambda_mid}) D ]   (Euler to the midpoint),
    eps_mid = eps(x_mid, t_mid),
    x_s = alpha_s [ x_t / alpha_t + (e^{-lambda_down} - e^{-lambda_t}) eps_mid ] + s_noise sigma_s c_up z,

i.e. y_down = y_t + (s_down - s_t) eps_mid in y = x / alpha.  Two model calls per step.  When the
deterministic part reaches s_down = 0 (c_up = 1) or the step starts where alpha_t = 0 (lambda_t = -inf,
rectified flow at T) the midpoint does not exist and the step is the Euler ancestral one (one call).
eta = 0 gives the deterministic DPM-Solver-2 (order 2).
"""

from __future__ import annotations

import torch

from samplekit_fast.ancestral import AncestralStep, NoisySolver, scaled_first_order
from samplekit_fast.multistep import scalar


class DPM2Ancestral(NoisySolver):
    """DPM-Solver-2 midpoint steps in the noise level with ancestral noise (options eta, s_noise)."""

    name = "dpm_2_ancestral"
    aliases = ("sample_dpm_2_ancestral", "KDPM2AncestralDiscreteScheduler", "k_dpm_2_a")
    order = 1.0
    deterministic_order = 2.0
    nfe_per_step = 2
    default_schedule = "karras"

    def step(self, model, i, t0, t1, x, state, noise, plan):
        sde = model.sde
        st = AncestralStep.of(sde, t0, t1, self.eta)
        iv = st.iv
        x0 = model.predict(x, t0).x0
        if st.has_midpoint():
            x_mid, t_mid = st.to_midpoint(sde, x, x0)
            eps_mid = model.predict(x_mid, t_mid).eps
            x_next = (
                scalar(iv.alpha_s / iv.alpha_t, x) * x
                + scalar(iv.alpha_s * (torch.exp(-st.lam_down) - torch.exp(-iv.lam_t)), x) * eps_mid
            )
        else:
            x_next = scaled_first_order(x, x0, iv.lam_t, iv.sigma_t, st.lam_down, iv.alpha_s)
        if self.noisy:
            x_next = x_next + st.noise(x, noise, self.s_noise)
        return x_next, state, x0
