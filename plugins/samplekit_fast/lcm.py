"""Multistep consistency sampling, LCM (Luo et al. 2023, "Latent Consistency Models"; Song et al. 2023,
"Consistency Models", Alg. 1; k-diffusion/ComfyUI ``sample_lcm``, diffusers ``LCMScheduler``).

Each step denoises, then renoises to the next time with fresh noise:

    x_s = alpha_s D(x_t, t) + sigma_s z,     z ~ N(0, I),

so the chain never carries x_t forward, only the model's estimate of x_0.  With a consistency-distilled
network D is (nearly) a sample of p_0 given x_t and a few steps suffice; with any other network D is the
posterior mean E[X_0 | X_t = x] and the chain is a baseline that shrinks the spread of each step's
estimate.  The last step lands on t_min with its tiny
noise, as every samplekit sampler; diffusers returns D there instead (``denoise_final=True`` does that
after the last step).  The consistency boundary condition c_skip x + c_out F of a distilled network is the
network's own parametrisation, not part of the sampler (ComfyUI's view).  A step from alpha_t = 0
(rectified flow at T) needs nothing special.  One model call per step; finite at alpha_t = 0.
"""

from __future__ import annotations

from samplekit.sde import broadcast_to_batch
from samplekit.solver import Solver


class LCM(Solver):
    """Denoise, then renoise to the next time (no options beyond the grid)."""

    name = "lcm"
    aliases = ("sample_lcm", "LCMScheduler", "lcm_sampler")
    order = 1.0
    stochastic = True
    #: on a network that is not consistency-distilled it shrinks the spread at any budget (not a sampler of p_0)
    samples_target = False
    nfe_per_step = 1
    default_schedule = "karras"

    def step(self, model, i, t0, t1, x, state, noise, plan):
        x0 = model.predict(x, t0).x0
        alpha_s, sigma_s = model.sde.marginal(t1)
        x_next = broadcast_to_batch(alpha_s, x) * x0 + broadcast_to_batch(sigma_s, x) * noise.randn_like(x)
        return x_next, state, x0
