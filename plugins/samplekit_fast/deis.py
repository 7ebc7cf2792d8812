"""DEIS: exponential-integrator Adams-Bashforth on eps (Zhang & Chen 2023, ICLR), in diffusers'
DEISMultistepScheduler form (``algorithm_type="deis"``, "log-rho": the polynomial in log rho = -lambda,
the same for every SDE).  The paper's tAB takes the polynomial in the SDE's own time t (ComfyUI's
``deis``, ported from diff-sampler, in the time of a VP SDE): other weights, same order; not reproduced.

In the noise level rho = s = sigma_t / alpha_t with y = x / alpha_t and dy/ds = eps (noise_level.py),
step i interpolates eps through the last k = min(order, i + 1) outputs by the Lagrange polynomial P in
u = log s and integrates it exactly over the step:

    y_{i+1} = y_i + int_{s_i}^{s_{i+1}} P(log s) ds = y_i + sum_m w_m eps_{i-m},
    w_m = int_{log s_i}^{log s_{i+1}} e^u L_m(u) du,   L_m the Lagrange basis in u,

with the moments int_0^H s_i e^v v^k dv = s_{i+1} H^k - k (moment k - 1), H = log(s_{i+1} / s_i).
k = 1 is DDIM.  One call a step; order ``solver_order`` (1-3, default 3), planned per grid by multistep.py's
``plan_orders``: warm-up, and with ``lower_order_final`` (default) the last steps lowered at every step
count (the last first order).  diffusers lowers them only on grids shorter than 15 steps, which agrees
below 15 and, from 15 steps on grids uniform in t, extrapolates over a last log-SNR step 4-6x the one
before; ``lower_order_final=False`` is diffusers' rule from 15 steps.
Default ``schedule="logsnr"``.  The step from s = inf (rectified flow at T) is the core's DDIM step.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import torch

from samplekit_fast.multistep import MultistepSolver
from samplekit_fast.noise_level import level, multistep_update, quadrature_weights


@dataclass(frozen=True)
class EpsHistory:
    orders: tuple[int, ...]  # the planned order of each step
    nodes: tuple = ()  # (s, eps) of earlier steps, newest first


class DEIS(MultistepSolver):
    """tAB-DEIS of order 1-3: Lagrange interpolation of eps in log noise level, integrated exactly."""

    name = "deis"
    aliases = ("DEISMultistepScheduler",)
    order = 3.0
    stochastic = False
    nfe_per_step = 1
    default_schedule = "logsnr"

    def __init__(self, solver_order: Literal[1, 2, 3] = 3, **options) -> None:
        super().__init__(**options)
        self.solver_order = int(solver_order)

    def capabilities(self):
        return dataclasses.replace(super().capabilities(), order=float(self.solver_order))

    def init(self, model, x, ts, noise, plan):
        return EpsHistory(self.plan_orders(len(ts) - 1))

    def step(self, model, i, t0, t1, x, state: EpsHistory, noise, plan):
        sde = model.sde
        s0, s1 = level(sde, t0), level(sde, t1)
        pred = model.predict(x, t0)
        older = state.nodes
        keep = EpsHistory(state.orders, ((s0, pred.eps),) + older[: max(self.solver_order - 2, 0)])
        k = min(state.orders[i], len(older) + 1)
        nodes = ((s0, pred.eps),) + older[: k - 1]
        H = torch.log(s1 / s0)

        def moments(c):
            mu = [s1 - s0]
            for j in range(1, len(nodes)):
                mu.append(s1 * (H / c) ** j - (j / c) * mu[-1])
            return mu

        weights = quadrature_weights([torch.log(s / s0) for s, _ in nodes], moments)
        x_next = multistep_update(x, pred.x0, [e for _, e in nodes], weights, sde.marginal(t1)[0], s1)
        return x_next, keep, pred.x0
