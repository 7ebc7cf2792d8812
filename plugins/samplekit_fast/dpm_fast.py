"""DPM-Solver-fast (Lu et al. 2022, NeurIPS, Sec. 3.4), k-diffusion's ``sample_dpm_fast``.

A budget of N model calls is spent on m = floor(N / 3) + 1 steps uniform in log-SNR (default
``schedule="logsnr"``) with DPM-Solver-3 steps and a lower-order end (dpm_solver.py has the updates):

    N = 3K:      orders 3, ..., 3, 2, 1       (K - 1 threes)
    N = 3K + j:  orders 3, ..., 3, j          (K threes, j = 1 or 2)

so exactly N calls are spent.  On a grid given as ``ts=`` (no budget), n steps take orders 3, ..., 3, 2, 1;
where the core takes the first step itself (from alpha_T = 0, one call) the rest follows the plan.
A step from alpha_t = 0 (lambda_t = -inf, rectified flow at T) is the DDIM step x = alpha x0 + sigma eps
(one call), the only finite limit there.  Declared order 3.
"""

from __future__ import annotations

import torch

from samplekit.solver import Solver, SolverError
from samplekit_fast.dpm_solver import DPMSolverStep
from samplekit_fast.multistep import scalar
from samplekit_fast.noise_level import ddim, level


def order_plan(budget: int) -> list[int]:
    """k-diffusion's orders for a budget of ``budget`` calls."""
    steps = budget // 3 + 1
    return [3] * (steps - 2) + [2, 1] if budget % 3 == 0 else [3] * (steps - 1) + [budget % 3]


class DPMSolverFast(Solver):
    """DPM-Solver-fast: DPM-Solver-3 steps uniform in log-SNR, lower orders at the end, exactly N calls."""

    name = "dpm_fast"
    aliases = ("sample_dpm_fast", "dpm_fast")
    order = 3.0
    stochastic = False
    nfe_per_step = 3
    default_schedule = "logsnr"

    def __init__(self, **base) -> None:
        super().__init__(**base)
        self._plan: list[int] = []

    def steps_for(self, nfe: int) -> int:
        budget = nfe - (1 if self.denoise_final else 0)
        if budget < 1:
            raise SolverError(
                f"nfe={nfe} is too small for solver {self.name!r}: it needs at least 2 "
                "(1 for a DPM-Solver-1 step, +1 for denoise_final); raise nfe"
            )
        self._plan = order_plan(budget)
        return len(self._plan)

    def init(self, model, x, ts, noise):
        n = len(ts) - 1
        if 0 < n <= len(self._plan):  # the core took the first steps (from alpha_T = 0, one call): the rest of the plan
            return self._plan[-n:]
        return [3] * (n - 2) + [2, 1] if n >= 2 else [3]

    def step(self, model, i, t0, t1, x, orders, noise):
        sde = model.sde
        if not torch.isfinite(level(sde, t0)):
            pred = model.predict(x, t0)
            return ddim(x, pred.x0, pred.eps, sde.marginal(t1)[0], level(sde, t1)), orders, pred.x0
        step = DPMSolverStep(model, x, t0, sde.log_snr(t1))
        y_next = step.of_order(orders[i])
        return scalar(sde.marginal(t1)[0], x) * y_next, orders, step.x0
