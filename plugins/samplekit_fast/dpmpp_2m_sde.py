"""SDE-DPM-Solver++(2M) (Lu et al. 2022): the stochastic multistep DPM-Solver++, data prediction.

For eta >= 0 the reverse-time family that keeps the marginals, solved exactly in lambda
(h = lambda_s - lambda_t, H = (1 + eta) h, z ~ N(0, I) from the NoiseSource):

    x_s = (sigma_s / sigma_t) e^{-eta h} x_t + alpha_s int_0^h (1 + eta) e^{-(1 + eta)(h - u)} x0 du
          + sigma_s sqrt(1 - e^{-2 eta h}) z.

eta = 1 is the reverse SDE (SDE-DPM-Solver++ of the paper); eta = 0 the probability-flow ODE.
With x0 linear in lambda through the previous output x0_p (at lambda_t - h_p, r = h_p / h):
    first order:  x_s = (sigma_s/sigma_t) e^{-eta h} x_t + alpha_s (1 - e^{-H}) x0_t + noise
    second order: + alpha_s c (x0_t - x0_p) / r, with
        solver_type="midpoint": c = (1 - e^{-H}) / 2            (the paper's 2M form; default)
        solver_type="heun":     c = 1 + (e^{-H} - 1) / H         (the exact weight of the linear term)
The first step is first order; ``lower_order_final`` (default on) makes the last step first order on
every grid (multistep.py); k-diffusion's name ``sample_dpmpp_2m_sde`` selects ``lower_order_final=False``
(k-diffusion's numbers; its step onto a final sigma = 0 is the denoise, the core's ``step_to_zero``).
One model call per step; default ``schedule="logsnr"``.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch

from samplekit.options import Ge
from samplekit_fast.multistep import History, Interval, MultistepSolver, scalar

SOLVER_TYPES = ("midpoint", "heun")


class SDEDPMSolverPP2M(MultistepSolver):
    """SDE-DPM-Solver++(2M): stochastic second-order multistep solver (options eta, solver_type)."""

    name = "dpmpp_2m_sde"
    aliases = ("sample_dpmpp_2m_sde", "DPM++ 2M SDE")
    # k-diffusion's sample_dpmpp_2m_sde: full order up to the step onto sigma = 0
    alias_options = {name: {"lower_order_final": False} for name in aliases}
    order = 1.0  # strong order of a stochastic solver; second order in the drift (and exactly so at eta=0)
    solver_order = 2
    stochastic = True
    nfe_per_step = 1
    default_schedule = "logsnr"

    def __init__(
        self, eta: Annotated[float, Ge(0)] = 1.0, solver_type: Literal["midpoint", "heun"] = "midpoint", **options
    ) -> None:
        """``eta``: 1 = reverse SDE, 0 = ODE."""
        super().__init__(**options)
        self.eta = float(eta)
        self.solver_type = solver_type

    def step(self, model, i, t0, t1, x, state: History, noise, plan):
        iv = Interval.of(model.sde, t0, t1)
        lam_t, alpha_s, sigma_t, sigma_s, h = iv.lam_t, iv.alpha_s, iv.sigma_t, iv.sigma_s, iv.h
        x0 = model.predict(x, t0).x0
        big_h = (1 + self.eta) * h
        weight = -torch.expm1(-big_h)
        x_next = scalar(sigma_s / sigma_t * torch.exp(-self.eta * h), x) * x + scalar(alpha_s * weight, x) * x0
        if state.orders[i] == 2 and state.x0s:
            r = (lam_t - state.lams[-1]) / h
            c = weight / 2 if self.solver_type == "midpoint" else 1 - weight / big_h
            x_next = x_next + scalar(alpha_s * c / r, x) * (x0 - state.x0s[-1])
        if self.eta > 0:
            x_next = x_next + scalar(sigma_s * torch.sqrt(-torch.expm1(-2 * self.eta * h)), x) * noise.randn_like(x)
        return x_next, state.push(lam_t, x0, keep=1), x0
