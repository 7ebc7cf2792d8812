"""DPM-Solver++(2S) with ancestral noise (k-diffusion ``sample_dpmpp_2s_ancestral``; ComfyUI
``dpmpp_2s_ancestral``).

Lu et al. (2022), "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion Probabilistic Models",
singlestep second order (r = 1/2) in data prediction, plus the ancestral split of
``samplekit_fast.ancestral``.  A step t -> s with D = x0(x_t, t), lambda_down, c_up from the split,
h = lambda_down - lambda_t and the first-order step
E_{a->b}(x, D) = alpha_b [(e^{-lambda_b}/sigma_a) x + (1 - e^{lambda_a - lambda_b}) D]:

    lambda_mid = lambda_t + h / 2,  x_mid = E_{t->mid}(x_t, D),  D_mid = x0(x_mid, t(lambda_mid)),
    x_s = alpha_s [ (e^{-lambda_down} / sigma_t) x_t + (1 - e^{-h}) D_mid ] + s_noise sigma_s c_up z.

Two model calls per step.  When s_down = 0 (c_up = 1) or alpha_t = 0 (lambda_t = -inf, rectified flow
at T) the step is the first-order ancestral one with D (one call).  eta = 0 gives the deterministic
DPM-Solver++(2S) (order 2).
"""

from __future__ import annotations

from samplekit_fast.ancestral import AncestralStep, NoisySolver, scaled_first_order


class DPMSolverPP2SAncestral(NoisySolver):
    """DPM-Solver++(2S) steps with ancestral noise (options eta, s_noise)."""

    name = "dpmpp_2s_ancestral"
    aliases = ("sample_dpmpp_2s_ancestral", "dpmpp_2s_a", "k_dpmpp_2s_a")
    order = 1.0
    deterministic_order = 2.0
    nfe_per_step = 2
    default_schedule = "karras"

    def step(self, model, i, t0, t1, x, state, noise, plan):
        sde = model.sde
        st = AncestralStep.of(sde, t0, t1, self.eta)
        iv = st.iv
        x0 = d = model.predict(x, t0).x0
        if st.has_midpoint():
            x_mid, t_mid = st.to_midpoint(sde, x, x0)
            d = model.predict(x_mid, t_mid).x0
        x_next = scaled_first_order(x, d, iv.lam_t, iv.sigma_t, st.lam_down, iv.alpha_s)
        if self.noisy:
            x_next = x_next + st.noise(x, noise, self.s_noise)
        return x_next, state, x0
