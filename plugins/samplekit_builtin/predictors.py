"""The predictors of the predictor-corrector sampler: one reverse-SDE step from t0 = t to t1 = s, one call.

- ``reverse_diffusion``: score_sde's ReverseDiffusionPredictor with the forward process discretised
  exactly from the marginals, f_disc = (alpha_{t|s} - 1) x_t and G = sigma_{t|s}:
      x_s = x_t - f_disc + G^2 s(x_t, t) + G z.
  On a VP SDE, alpha_{t|s}^2 = 1 - beta_i and G^2 = beta_i (score_sde's DDPM discretisation); on a VE SDE,
  f_disc = 0 and G^2 = sigma_t^2 - sigma_s^2 (score_sde's VE discretisation).
- ``euler_maruyama``: the ``euler_maruyama`` solver's step.
- ``ancestral``: the ``ddpm`` solver's step (the Gaussian posterior q(x_s | x_t, x0_hat)).
"""

from __future__ import annotations

from samplekit.solver import Solver
from samplekit_builtin.ddpm import DDPM
from samplekit_builtin.euler_maruyama import EulerMaruyama
from samplekit_builtin.gaussian_step import gaussian_step


class ReverseDiffusion(Solver):
    """score_sde's reverse-diffusion predictor (used inside ``pc``; not registered on its own)."""

    name = "reverse_diffusion"
    order = 0.5
    stochastic = True

    def step(self, model, i, t0, t1, x, state, noise, plan):
        pred = model.predict(x, t0)
        post = gaussian_step(model.sde, t0, t1, x)
        x_mean = (2 - post.alpha_ts) * x + post.sigma_ts**2 * pred.score
        return x_mean + post.sigma_ts * noise.randn_like(x), state, pred.x0


PREDICTORS = {"reverse_diffusion": ReverseDiffusion, "euler_maruyama": EulerMaruyama, "ancestral": DDPM}
