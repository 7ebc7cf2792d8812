"""DPM-Solver++(2S): singlestep, second order, data prediction, in log-SNR (Lu et al. 2022, "DPM-Solver++",
arXiv:2211.01095, Alg. 1).

Step t -> s with h = lambda_s - lambda_t, an intermediate time m at lambda_m = lambda_t + r h, r = 1/2
(the midpoint, as k-diffusion's ``sample_dpmpp_2s_ancestral`` at eta = 0 and diffusers'
DPMSolverSinglestepScheduler with ``solver_order=2``, ``solver_type="midpoint"``):

    u   = (sigma_m / sigma_t) x_t - alpha_m (e^{-r h} - 1) x0(x_t, t)          (DPM-Solver++(1) to m)
    D   = (1 - 1 / (2 r)) x0(x_t, t) + x0(u, m) / (2 r)                           (= x0(u, m) at r = 1/2)
    x_s = (sigma_s / sigma_t) x_t - alpha_s (e^{-h} - 1) D

with r computed from the intermediate time actually used.  Two model calls a step, so a budget of
N calls walks floor(N / 2) steps (default ``schedule="logsnr"``).  From alpha_t = 0 (lambda_t = -inf,
rectified flow at T) there is no finite midpoint: that step is the core's DDIM step (one call).
"""

from __future__ import annotations

from samplekit.solver import Solver
from samplekit_fast.multistep import Interval, scalar


def midpoint_time(sde, iv: Interval, r: float):
    """The model time at lambda_t + r h, kept inside [t_min, T]."""
    return sde.time_at_log_snr(iv.lam_t + r * iv.h)


class DPMSolverPP2S(Solver):
    """DPM-Solver++(2S): singlestep second-order exponential integrator, midpoint in log-SNR."""

    name = "dpmpp_2s"
    # no diffusers alias: DPMSolverSinglestepScheduler takes its intermediate point on its own grid (r from the
    # next timestep), where this solver takes r = 1/2 of the log-SNR step; its step formula is tested alike
    aliases = ()
    order = 2.0
    stochastic = False
    nfe_per_step = 2
    default_schedule = "logsnr"

    def step(self, model, i, t0, t1, x, state, noise, plan):
        sde = model.sde
        iv = Interval.of(sde, t0, t1)
        x0 = model.predict(x, t0).x0
        t_m = midpoint_time(sde, iv, 0.5)
        to_m = Interval.of(sde, t0, t_m)
        x0_m = model.predict(to_m.first_order(x, x0), t_m).x0
        r = to_m.h / iv.h
        D = x0 + scalar(1 / (2 * r), x) * (x0_m - x0)
        return iv.first_order(x, D), state, x0
