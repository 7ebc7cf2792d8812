"""Euler ancestral sampling (k-diffusion ``sample_euler_ancestral``; diffusers ``EulerAncestralDiscreteScheduler``).

Karras et al. (2022), "Elucidating the Design Space of Diffusion-Based Generative Models", with the
ancestral noise split of Ho et al. (2020) / k-diffusion.  In the README's notation, a step t -> s with
D = x0(x_t, t), lambda = log(alpha / sigma), h = lambda_s - lambda_t and the split of
``samplekit_fast.ancestral`` (c_up = min(1, eta sqrt(1 - e^{-2h})), lambda_down = lambda_s - log(1 - c_up^2)/2):

    x_s = alpha_s [ (e^{-lambda_down} / sigma_t) x_t + (1 - e^{lambda_t - lambda_down}) D ] + s_noise sigma_s c_up z,

which on a VE/EDM SDE (alpha = 1, sigma = k-diffusion's sigma) is k-diffusion's
x + (x - D)/sigma_t (sigma_down - sigma_t) + sigma_up z.  eta = 1 with s_noise = 1 is DDPM's ancestral
sampler; eta = 0 the (deterministic, first-order) Euler / DDIM step.  One model call per step.
At T with alpha_T = 0 (rectified flow) lambda_t = -inf and the step is x_s = alpha_s D + noise.
"""

from __future__ import annotations

from samplekit_fast.ancestral import AncestralStep, NoisySolver, scaled_first_order


class EulerAncestral(NoisySolver):
    """Euler steps in the noise level with ancestral noise (options eta, s_noise)."""

    name = "euler_ancestral"
    aliases = ("sample_euler_ancestral", "EulerAncestralDiscreteScheduler", "k_euler_a")
    order = 1.0
    deterministic_order = 1.0
    nfe_per_step = 1
    default_schedule = "karras"

    def step(self, model, i, t0, t1, x, state, noise, plan):
        st = AncestralStep.of(model.sde, t0, t1, self.eta)
        x0 = model.predict(x, t0).x0
        x_next = scaled_first_order(x, x0, st.iv.lam_t, st.iv.sigma_t, st.lam_down, st.iv.alpha_s)
        if self.noisy:
            x_next = x_next + st.noise(x, noise, self.s_noise)
        return x_next, state, x0
