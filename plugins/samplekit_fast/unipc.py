"""UniPC (Zhao et al. 2023): the UniP predictor with the UniC corrector, data prediction, in log-SNR.

One update from a base point b (x_b, x0_b at lambda_b) to lambda_s, h = lambda_s - lambda_b, using
nodes r_m (lambda_m = lambda_b + r_m h) with D_m = x0_m - x0_b:

    x_s = (sigma_s / sigma_b) x_b + alpha_s I_0 x0_b - alpha_s B(h) sum_m rho_m D_m / r_m,

with I_k the weights of multistep.py, B(h) = -h ("bh1") or e^{-h} - 1 ("bh2"), and rho solving
    sum_m rho_m r_m^{k-1} = -k! I_k / (B(h) h^k),   k = 1..(number of nodes),
so the update integrates the interpolant of x0 exactly; with a single node rho = 1/2, the h -> 0
limit, which is where bh1 and bh2 differ (as in the paper; bh2's one-node predictor is DPM-Solver++(2M)).

Step i evaluates x0_i at the predicted x_i (its one model call), then
  UniC: re-does the previous update t_{i-1} -> t_i with x0_i as an extra node (r = 1): x_i corrected;
  UniP: predicts x_{i+1} from the corrected x_i with the last p - 1 outputs as nodes (r < 0).
The corrector costs no extra call and is skipped after the last step (no call at t_min).  ``order``
p (default 2, so predictor order 2 and corrector order 3) warms up as min(p, i + 1) and, with
``lower_order_final``, drops to min(p, n - i) on the last steps of every grid (multistep.py; diffusers'
UniPC rule).  Default ``schedule="logsnr"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import torch

from samplekit_fast.multistep import History, Interval, MultistepSolver, phi_weights, scalar

VARIANTS = ("bh1", "bh2")


@dataclass(frozen=True)
class UniPCState:
    history: History  # the last outputs (lambda, x0), most recent last
    t_base: torch.Tensor | None = None  # the last evaluated time ...
    x_base: torch.Tensor | None = None  # ... the (corrected) x there, the predictor's start
    base_order: int = 1  # the order of the last predictor


class UniPC(MultistepSolver):
    """UniPC: UniP-p predictor + UniC corrector (options solver_order in 1..3, variant bh1/bh2, corrector)."""

    name = "unipc"
    aliases = ("UniPCMultistepScheduler", "uni_pc", "uni_pc_bh2")
    order = 3.0  # with the default solver_order=2: a second-order predictor raised to third by the corrector
    stochastic = False
    nfe_per_step = 1
    default_schedule = "logsnr"

    def __init__(
        self,
        solver_order: Literal[1, 2, 3] = 2,
        variant: Literal["bh1", "bh2"] = "bh2",
        corrector: bool = True,
        **options,
    ) -> None:
        super().__init__(**options)
        self.solver_order = int(solver_order)
        self.variant = variant
        self.corrector = bool(corrector)

    def capabilities(self):
        """Order p of the UniP-p predictor, p + 1 with the UniC corrector (Zhao et al. 2023, Thm 3.1)."""
        return replace(super().capabilities(), order=float(self.solver_order + (1 if self.corrector else 0)))

    def init(self, model, x, ts, noise, plan):
        return UniPCState(History(len(ts) - 1, orders=self.plan_orders(len(ts) - 1)))

    def step(self, model, i, t0, t1, x, state: UniPCState, noise, plan):
        sde, hist = model.sde, state.history
        lam_t = sde.log_snr(t0)
        x0 = model.predict(x, t0).x0
        if self.corrector and state.x_base is not None:  # UniC: redo the last update with x0 at t0
            older = list(zip(hist.lams, hist.x0s))[len(hist.x0s) - state.base_order : -1]
            x = self.update(sde, state.t_base, t0, state.x_base, hist.x0s[-1], older + [(lam_t, x0)])
        order = min(hist.orders[i], len(hist.x0s) + 1)
        hist = hist.push(lam_t, x0, keep=self.solver_order)
        older = list(zip(hist.lams, hist.x0s))[len(hist.x0s) - order : -1]
        x_next = self.update(sde, t0, t1, x, x0, older)  # UniP
        return x_next, UniPCState(hist, t0, x, order), x0

    def update(self, sde, t_b, t_s, x_b, x0_b, nodes):
        """The UniPC update from (x_b, x0_b) at t_b to t_s, with nodes [(lambda_m, x0_m), ...]."""
        iv = Interval.of(sde, t_b, t_s)
        lam_b, alpha_s, h = iv.lam_t, iv.alpha_s, iv.h
        weights = phi_weights(h, len(nodes))
        out = iv.first_order(x_b, x0_b)
        if not nodes:
            return out
        B = -h if self.variant == "bh1" else torch.expm1(-h)
        r = torch.stack([(lam - lam_b) / h for lam, _ in nodes])
        if len(nodes) == 1:
            rho = torch.full_like(r, 0.5)
        else:
            R = torch.stack([r**k for k in range(len(nodes))])
            b = torch.stack([-math.factorial(k) * weights[k] / (B * h**k) for k in range(1, len(nodes) + 1)])
            rho = torch.linalg.solve(R, b)
        for m, (_, x0_m) in enumerate(nodes):
            out = out - scalar(alpha_s * B * rho[m] / r[m], x_b) * (x0_m - x0_b)
        return out
