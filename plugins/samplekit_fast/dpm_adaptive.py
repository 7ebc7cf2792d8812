"""DPM-Solver-12 / DPM-Solver-23 with adaptive steps (Lu et al. 2022, NeurIPS, Sec. 4.2 and Alg. 4-5),
k-diffusion's ``sample_dpm_adaptive``: tolerances rtol, atol set the cost; ``nfe`` is a cap.

From log-SNR lambda (start lambda_T) to lambda_end = lambda(t_min), each attempt with step h
(dpm_solver.py has the updates; y = x / alpha):

    order 3:  y_low = DPM-Solver-2(r1 = 1/3),  y_high = DPM-Solver-3     (3 calls, eps(u1) shared)
    order 2:  y_low = DPM-Solver-1,            y_high = DPM-Solver-2     (2 calls)
    delta = max(atol, rtol max(|y_low|, |y_prev|)),  E = ||(y_low - y_high) / delta||_2 / sqrt(numel)

with y_prev the last accepted y_low and numel counted over the whole batch (as k-diffusion; so the
steps are shared by the batch).  A PID controller (``samplekit.step_size``; pcoeff, icoeff,
dcoeff over the exponent order) scales h by 1 + atan(f - 1), f = prod_k (1 / (E_k + 1e-8))^{b_k};
the step is accepted when the factor is at least ``accept_safety``, and then y = y_high.
The loop ends within 1e-5 of lambda_end.
From alpha_T = 0 (lambda_T = -inf, rectified flow) it first takes the core's DDIM step
x = alpha x0 + sigma eps (``samplekit.sampling.alpha_zero_step``) to lambda = LAMBDA_FROM_INFINITY = -10,
which errs by O(e^{2 lambda}) ~ 2e-9 (x0(x_t) moves by O(alpha / sigma) there), then adapts.
Step-size control is the core's ``samplekit.step_size.PIDController``; the cap (``nfe``) is enforced
by the core's meter, and each accepted step is reported to the progress bar and callback.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal

import torch

from samplekit.options import Finite, Ge, Gt
from samplekit.sampling import alpha_zero_step
from samplekit.solver import Solver, SolverError
from samplekit.step_size import PIDController
from samplekit_fast.dpm_solver import DPMSolverStep
from samplekit_fast.multistep import scalar

LAMBDA_FROM_INFINITY = -10.0


class DPMSolverAdaptive(Solver):
    """DPM-Solver-12/23 with embedded error control: rtol/atol, PID step control; nfe is a cap."""

    name = "dpm_adaptive"
    aliases = ("sample_dpm_adaptive", "dpm_adaptive")
    order = 3.0
    stochastic = False
    adaptive = True
    nfe_per_step = 3

    def __init__(
        self,
        solver_order: Literal[2, 3] = 3,
        rtol: Annotated[float, Ge(0), Finite()] = 0.05,
        atol: Annotated[float, Ge(0), Finite()] = 0.0078,
        h_init: Annotated[float, Gt(0), Finite()] = 0.05,
        pcoeff: float = 0.0,
        icoeff: float = 1.0,
        dcoeff: float = 0.0,
        accept_safety: Annotated[float, Gt(0)] = 0.81,
        **base,
    ) -> None:
        super().__init__(**base)
        if float(rtol) == 0 and float(atol) == 0:
            raise SolverError(f"solver {self.name!r}: rtol and atol are both 0; give at least one a positive tolerance")
        self.solver_order = int(solver_order)
        self.rtol, self.atol, self.h_init = float(rtol), float(atol), float(h_init)
        self.pcoeff, self.icoeff, self.dcoeff = float(pcoeff), float(icoeff), float(dcoeff)
        self.accept_safety = float(accept_safety)

    def capabilities(self):
        caps = super().capabilities()
        return dataclasses.replace(caps, order=float(self.solver_order), nfe_per_step=self.solver_order)

    def solve(self, model, x, noise, plan, on_step):
        sde, order = model.sde, self.solver_order
        t_T = torch.tensor(sde.T, dtype=torch.float64)
        lam, lam_end = sde.log_snr(t_T), sde.log_snr(torch.tensor(sde.t_min, dtype=torch.float64))
        if not torch.isfinite(lam):
            lam = torch.tensor(min(LAMBDA_FROM_INFINITY, float(lam_end) - 1.0), dtype=torch.float64)
            t_hop = sde.t_from_log_snr(lam)
            x, x0 = alpha_zero_step(model, x, t_T, t_hop)
            on_step(t_T, t_hop, x, x0)
        t = sde.time_at_log_snr(lam)
        y = x / scalar(sde.marginal(t)[0], x)
        y_prev = y
        control = PIDController(self.rtol, self.atol, self.pcoeff, self.icoeff, self.dcoeff, safety=self.accept_safety)
        state = control.init(self.h_init)
        while lam < lam_end - 1e-5:
            lam_next = torch.minimum(lam_end, lam + state.h)
            step = DPMSolverStep(model, scalar(sde.marginal(t)[0], y) * y, t, lam_next)
            y_low, y_high = (step.first(), step.second()) if order == 2 else (step.second(1 / 3), step.third())
            accept, _, state = control.adapt_step_size(y_low, y_high, y_prev, order, state)
            if accept:
                t_next = sde.time_at_log_snr(lam_next)
                y_prev, y, lam = y_low, y_high, lam_next
                on_step(t, t_next, scalar(sde.marginal(t_next)[0], y) * y, step.x0)
                t = t_next
        return scalar(sde.marginal(torch.tensor(sde.t_min, dtype=torch.float64))[0], y) * y
