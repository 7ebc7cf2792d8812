"""DPM-Solver++(3S): singlestep, third order, data prediction, in log-SNR (Lu et al. 2022, "DPM-Solver++",
arXiv:2211.01095; DPM-Solver-3 of arXiv:2206.00927 in data prediction).

Step t -> s with h = lambda_s - lambda_t and intermediate times s1, s2 at lambda_t + h/3, lambda_t + 2h/3
(r_k = (lambda_{s_k} - lambda_t) / h from the times actually used), x0_t = x0(x_t, t):

    u1  = (sigma_1 / sigma_t) x_t - alpha_1 (e^{-h_1} - 1) x0_t,                h_k = r_k h
    u2  = (sigma_2 / sigma_t) x_t - alpha_2 (e^{-h_2} - 1) (x0_t + (x0(u1, s1) - x0_t) r_2 / (2 r_1))
    x_s = (sigma_s / sigma_t) x_t - alpha_s (e^{-h} - 1) x0_t
          + alpha_s ((e^{-h} - 1) / h + 1) (x0(u2, s2) - x0_t) / r_2.

u2 is the DPM-Solver++(2S) "midpoint" step from t to s2 with s1 as its intermediate, as diffusers'
DPMSolverSinglestepScheduler (``solver_order=3``, ``solver_type="midpoint"``) computes it; the official
DPM-Solver code weights that second-order term by ((e^{-h_2} - 1) / h_2 + 1) r_2 / r_1 instead.  Both
are second-order accurate at s2, so the step is third order either way; samplekit follows diffusers
(tested against it step by step).  Three model calls a step: a budget of N calls walks floor(N / 3)
steps (default ``schedule="logsnr"``).  From alpha_t = 0 (lambda_t = -inf) the step is the core's DDIM
step (one call).
"""

from __future__ import annotations

from samplekit.solver import Solver
from samplekit_fast.dpmpp_2s import midpoint_time
from samplekit_fast.multistep import Interval, phi_weights, scalar


class DPMSolverPP3S(Solver):
    """DPM-Solver++(3S): singlestep third-order exponential integrator (r1 = 1/3, r2 = 2/3)."""

    name = "dpmpp_3s"
    aliases = ()  # diffusers: DPMSolverSinglestepScheduler(solver_order=3); no k-diffusion or ComfyUI name
    order = 3.0
    stochastic = False
    nfe_per_step = 3
    default_schedule = "logsnr"

    def step(self, model, i, t0, t1, x, state, noise, plan):
        sde = model.sde
        iv = Interval.of(sde, t0, t1)
        x0 = model.predict(x, t0).x0
        t_1, t_2 = midpoint_time(sde, iv, 1 / 3), midpoint_time(sde, iv, 2 / 3)
        to_1, to_2 = Interval.of(sde, t0, t_1), Interval.of(sde, t0, t_2)
        r1, r2 = to_1.h / iv.h, to_2.h / iv.h
        x0_1 = model.predict(to_1.first_order(x, x0), t_1).x0
        u2 = to_2.first_order(x, x0 + scalar(r2 / (2 * r1), x) * (x0_1 - x0))
        x0_2 = model.predict(u2, t_2).x0
        _, i1 = phi_weights(iv.h, 1)
        x_next = iv.first_order(x, x0) + scalar(iv.alpha_s * i1 / iv.h / r2, x) * (x0_2 - x0)
        return x_next, state, x0
