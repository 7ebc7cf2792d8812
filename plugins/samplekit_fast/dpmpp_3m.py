"""DPM-Solver++(3M): multistep, third order, data prediction, in log-SNR.

Step t -> s, h = lambda_s - lambda_t, x0_t the model's denoised prediction at (x_t, t), and the
exponential-integrator weights I_0 = 1 - e^{-h}, I_1 = h - I_0, I_2 = h^2/2 - I_1 (multistep.py):

    x_s = (sigma_s / sigma_t) x_t + alpha_s (I_0 x0_t + I_1 x0'_t + I_2 x0''_t),

with the lambda-derivatives of x0 from the Newton interpolant through the last outputs
x0_t, x0_p (at lambda_t - h_0) and x0_q (at lambda_t - h_0 - h_1):
    d_0 = (x0_t - x0_p) / h_0,  d_1 = (x0_p - x0_q) / h_1,  dd = (d_0 - d_1) / (h_0 + h_1),
    third order:  x0' = d_0 + h_0 dd,  x0'' = 2 dd
    second order: x0' = d_0,           x0'' = 0     (second step, and the second-to-last)
    first order:  x0' = x0'' = 0                    (first step, and the last step)
(``lower_order_final``, default on: the last two steps of every grid drop to orders 2 and 1
(multistep.py explains why at every step count, not only below 15 as DPM-Solver++); off, every step
after the warm-up is third order.)

``midpoint_weights=True`` takes the weights of diffusers' DPMSolverMultistepScheduler (dpmsolver++, order 3,
solver_type "midpoint"): a second-order step adds alpha_s (h I_0 / 2) d_0 (the midpoint rule, as dpmpp_2m)
instead of alpha_s I_1 d_0, and a third-order step takes x0'' = dd, half the interpolant's second derivative
(its D2 term; k-diffusion's ``sample_dpmpp_3m_sde`` weights it so too).  The diffusers config selects it;
the plain name keeps the Taylor weights above.

One model call per step: a budget of N calls walks an N-step grid (default ``schedule="logsnr"``).
"""

from __future__ import annotations

import torch

from samplekit_fast.multistep import History, Interval, MultistepSolver, phi_weights, scalar


class DPMSolverPP3M(MultistepSolver):
    """DPM-Solver++(3M): third-order multistep exponential integrator on the probability-flow ODE."""

    name = "dpmpp_3m"
    order = 3.0
    solver_order = 3
    stochastic = False
    nfe_per_step = 1
    default_schedule = "logsnr"

    def __init__(self, midpoint_weights: bool = False, **base) -> None:
        """``midpoint_weights``: diffusers' weights (module docstring): h I_0 / 2 on d_0 at second order,
        x0'' = dd at third."""
        super().__init__(**base)
        self.midpoint_weights = bool(midpoint_weights)

    def step(self, model, i, t0, t1, x, state: History, noise, plan):
        iv = Interval.of(model.sde, t0, t1)
        lam_t, alpha_s = iv.lam_t, iv.alpha_s
        x0 = model.predict(x, t0).x0
        _, i1, i2 = phi_weights(iv.h, 2)
        order = min(state.orders[i], len(state.x0s) + 1)
        x_next = iv.first_order(x, x0)
        if order >= 2:
            h0 = lam_t - state.lams[-1]
            d0 = (x0 - state.x0s[-1]) / scalar(h0, x)
            slope, weight = d0, i1
            if order == 2 and self.midpoint_weights:
                weight = -iv.h * torch.expm1(-iv.h) / 2  # h I_0 / 2
            if order == 3:
                h1 = state.lams[-1] - state.lams[-2]
                dd = (d0 - (state.x0s[-1] - state.x0s[-2]) / scalar(h1, x)) / scalar(h0 + h1, x)
                slope = d0 + scalar(h0, x) * dd
                x_next = x_next + scalar((1 if self.midpoint_weights else 2) * alpha_s * i2, x) * dd
            x_next = x_next + scalar(alpha_s * weight, x) * slope
        return x_next, state.push(lam_t, x0, keep=2), x0
