"""DPM-Solver-fast (Lu et al. 2022, NeurIPS, Sec. 3.4), k-diffusion's ``sample_dpm_fast``.

A budget of N model calls is spent on m = floor(N / 3) + 1 steps uniform in log-SNR (default
``schedule="logsnr"``) with DPM-Solver-3 steps and a lower-order end (dpm_solver.py has the updates):

    N = 3K:      orders 3, ..., 3, 2, 1       (K - 1 threes)
    N = 3K + j:  orders 3, ..., 3, j          (K threes, j = 1 or 2)

so exactly N calls are spent (the orders are the plan's ``per_step``).  On a grid given as ``ts=``
(no budget), n steps take orders 3, ..., 3, 2, 1; where the core takes the first step itself (from
alpha_T = 0, one call) the rest follows the plan.  Declared order 3.
"""

from __future__ import annotations

from dataclasses import replace

from samplekit.solver import Plan, Solver
from samplekit_fast.dpm_solver import DPMSolverStep
from samplekit_fast.multistep import scalar


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

    def plan(self, nfe: int, calls_per_eval: int = 1) -> Plan:
        """k-diffusion's orders for the budget, in ``per_step``: exactly the budget's evaluations."""
        budget = nfe // calls_per_eval - (1 if self.denoise_final else 0)
        if budget < 1:
            self.refuse_budget(nfe, calls_per_eval, 1 + (1 if self.denoise_final else 0), "1 for a DPM-Solver-1 step")
        orders = tuple(order_plan(budget))
        return Plan(len(orders), nfe, calls_per_eval, orders)

    def plan_for_grid(self, n_steps: int, calls_per_eval: int = 1) -> Plan:
        """n steps on a given grid: orders 3, ..., 3, 2, 1."""
        plan = super().plan_for_grid(n_steps, calls_per_eval)
        orders = (3,) * (n_steps - 2) + (2, 1) if n_steps >= 2 else (3,)
        return replace(plan, per_step=orders)

    def init(self, model, x, ts, noise, plan):
        n = len(ts) - 1  # fewer than planned where the core took the first step (from alpha_T = 0, one call)
        return plan.per_step[-n:]

    def step(self, model, i, t0, t1, x, orders, noise, plan):
        sde = model.sde
        step = DPMSolverStep(model, x, t0, sde.log_snr(t1))
        y_next = step.of_order(orders[i])
        return scalar(sde.marginal(t1)[0], x) * y_next, orders, step.x0
