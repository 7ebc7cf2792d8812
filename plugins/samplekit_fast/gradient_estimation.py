"""Gradient estimation (Permenter & Yuan 2024, "Interpreting and improving diffusion models from an
optimization perspective", ICML), as ComfyUI's ``sample_gradient_estimation`` with ``ge_gamma``.

In the noise level s = sigma_t / alpha_t with y = x / alpha_t and d_i = eps(x_i, t_i) = (y_i - x0_i) / s_i
(k-diffusion's ``to_d``), the first step is Euler (DDIM) and every later one extrapolates the
denoising direction from the previous step:

    d_bar   = gamma d_i + (1 - gamma) d_{i-1}                     (gamma = ge_gamma, default 2)
    y_{i+1} = y_i + (s_{i+1} - s_i) d_bar.

With gamma = 2 the weights (2, -1) are not the Adams-Bashforth ones (3/2, -1/2), so on an exact score
the method is first order (declared order 1, fitted in the tests); Permenter & Yuan motivate it by
the error of a learned denoiser, not by the order.  One call a step (default ``schedule="karras"``).
"""

from __future__ import annotations

import math

from samplekit.solver import Solver, SolverError
from samplekit_fast.noise_level import ddim, level, multistep_update


class GradientEstimation(Solver):
    """Gradient-estimation sampler: Euler in the noise level with d_bar = gamma d + (1 - gamma) d_prev."""

    name = "gradient_estimation"
    aliases = ("sample_gradient_estimation", "gradient_estimation")
    order = 1.0
    stochastic = False
    nfe_per_step = 1
    default_schedule = "karras"

    def __init__(self, ge_gamma: float = 2.0, **base) -> None:
        super().__init__(**base)
        if isinstance(ge_gamma, bool) or not math.isfinite(float(ge_gamma)):
            raise SolverError(f"solver {self.name!r}: ge_gamma={ge_gamma!r} must be a finite number (2 is the default)")
        self.ge_gamma = float(ge_gamma)

    def init(self, model, x, ts, noise, plan):
        return None  # eps of the previous step

    def step(self, model, i, t0, t1, x, eps_prev, noise, plan):
        sde = model.sde
        s0, s1 = level(sde, t0), level(sde, t1)
        pred = model.predict(x, t0)
        alpha1 = sde.marginal(t1)[0]
        if eps_prev is None:
            return ddim(x, pred.x0, pred.eps, alpha1, s1), pred.eps, pred.x0
        weights = [s1 - s0, (s1 - s0) * (1 - self.ge_gamma)]
        return multistep_update(x, pred.x0, [pred.eps, eps_prev], weights, alpha1, s1), pred.eps, pred.x0
