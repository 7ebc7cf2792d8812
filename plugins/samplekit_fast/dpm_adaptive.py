"""DPM-Solver-12 / DPM-Solver-23 with adaptive steps (Lu et al. 2022, NeurIPS, Sec. 4.2 and Alg. 4-5),
k-diffusion's ``sample_dpm_adaptive``: tolerances rtol, atol set the cost; ``nfe`` is a cap.

From log-SNR lambda (start lambda_T) to lambda_end = lambda(t_min), each attempt with step h
(dpm_solver.py has the updates; y = x / alpha):

    order 3:  y_low = DPM-Solver-2(r1 = 1/3),  y_high = DPM-Solver-3     (3 calls, eps(u1) shared)
    order 2:  y_low = DPM-Solver-1,            y_high = DPM-Solver-2     (2 calls)
    delta = max(atol, rtol max(|y_low|, |y_prev|)),  E = ||(y_low - y_high) / delta||_2 / sqrt(numel)

with y_prev the last accepted y_low and numel counted over the whole batch (as k-diffusion; so the
steps are shared by the batch).  A PID controller (pcoeff, icoeff, dcoeff over the exponent order)
scales h by 1 + atan(f - 1), f = prod_k (1 / (E_k + 1e-8))^{b_k}; the step is accepted when the
factor is at least ``accept_safety``, and then y = y_high.  The loop ends within 1e-5 of lambda_end.
From alpha_T = 0 (lambda_T = -inf, rectified flow) it first takes the core's DDIM step
x = alpha x0 + sigma eps (``samplekit.sampling.alpha_zero_step``) to lambda = LAMBDA_FROM_INFINITY = -10,
which errs by O(e^{2 lambda}) ~ 2e-9 (x0(x_t) moves by O(alpha / sigma) there), then adapts.
An attempt that would pass the cap (``nfe`` network calls, the model's calls per evaluation and
``denoise_final`` counted) stops the run with an error before it is made.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from samplekit.sampling import alpha_zero_step
from samplekit.solver import Solver, SolverError
from samplekit_fast.dpm_solver import DPMSolverStep
from samplekit_fast.multistep import scalar
from samplekit_fast.noise_level import OrderOption

LAMBDA_FROM_INFINITY = -10.0


class PIDController:
    """k-diffusion's PID step-size controller on the inverse error, exponents over ``order``."""

    def __init__(self, h, pcoeff, icoeff, dcoeff, order, accept_safety, eps=1e-8) -> None:
        self.h, self.accept_safety, self.eps = h, accept_safety, eps
        self.b = ((pcoeff + icoeff + dcoeff) / order, -(pcoeff + 2 * dcoeff) / order, dcoeff / order)
        self.inv_errors: list[float] = []

    def propose(self, error: float) -> bool:
        inv = 1 / (error + self.eps)
        if not self.inv_errors:
            self.inv_errors = [inv, inv, inv]
        self.inv_errors[0] = inv
        factor = math.prod(e**b for e, b in zip(self.inv_errors, self.b))
        factor = 1 + math.atan(factor - 1)
        accept = factor >= self.accept_safety
        if accept:
            self.inv_errors[1:] = self.inv_errors[:2]
        self.h *= factor
        return accept


class DPMSolverAdaptive(OrderOption, Solver):
    """DPM-Solver-12/23 with embedded error control: rtol/atol, PID step control; nfe is a cap."""

    name = "dpm_adaptive"
    aliases = ("sample_dpm_adaptive", "dpm_adaptive")
    order = 3.0
    stochastic = False
    adaptive = True
    nfe_per_step = 3

    def __init__(
        self,
        order: int = 3,
        rtol: float = 0.05,
        atol: float = 0.0078,
        h_init: float = 0.05,
        pcoeff: float = 0.0,
        icoeff: float = 1.0,
        dcoeff: float = 0.0,
        accept_safety: float = 0.81,
        **base,
    ) -> None:
        super().__init__(**base)
        if isinstance(order, bool) or order not in (2, 3):
            raise SolverError(f"solver {self.name!r}: order={order!r} must be 2 (DPM-Solver-12) or 3 (DPM-Solver-23)")
        for key, value in (("rtol", rtol), ("atol", atol)):
            if not (math.isfinite(float(value)) and float(value) >= 0):
                raise SolverError(f"solver {self.name!r}: {key}={value!r} must be a finite number >= 0")
        if float(rtol) == 0 and float(atol) == 0:
            raise SolverError(f"solver {self.name!r}: rtol and atol are both 0; give at least one a positive tolerance")
        if not (math.isfinite(float(h_init)) and float(h_init) > 0):
            raise SolverError(f"solver {self.name!r}: h_init={h_init!r} must be a positive log-SNR step")
        if not float(accept_safety) > 0:
            raise SolverError(f"solver {self.name!r}: accept_safety={accept_safety!r} must be positive")
        self.solver_order = int(order)
        self.rtol, self.atol, self.h_init = float(rtol), float(atol), float(h_init)
        self.pcoeff, self.icoeff, self.dcoeff = float(pcoeff), float(icoeff), float(dcoeff)
        self.accept_safety = float(accept_safety)

    def capabilities(self):
        return dataclasses.replace(super().capabilities(), nfe_per_step=self.solver_order)

    def solve(self, model, x, noise, max_nfe):
        sde, order, start = model.sde, self.solver_order, model.nfe
        per_eval = int(getattr(model, "nfe_per_eval", 1))  # network calls per model evaluation (guidance)
        budget = None if max_nfe is None else max_nfe - (per_eval if self.denoise_final else 0)
        t_T = torch.tensor(sde.T, dtype=torch.float64)
        lam, lam_end = sde.log_snr(t_T), sde.log_snr(torch.tensor(sde.t_min, dtype=torch.float64))
        if not torch.isfinite(lam):
            self._check_budget(0, per_eval, budget, max_nfe)
            lam = torch.tensor(min(LAMBDA_FROM_INFINITY, float(lam_end) - 1.0), dtype=torch.float64)
            t_hop = sde.t_from_log_snr(lam)
            x = alpha_zero_step(model, x, t_T, t_hop)[0]
        t = sde.time_at_log_snr(lam)
        y = x / scalar(sde.marginal(t)[0], x)
        y_prev = y
        pid = PIDController(self.h_init, self.pcoeff, self.icoeff, self.dcoeff, order, self.accept_safety)
        atol, rtol = torch.tensor(self.atol, dtype=x.dtype), torch.tensor(self.rtol, dtype=x.dtype)
        while lam < lam_end - 1e-5:
            self._check_budget(model.nfe - start, order * per_eval, budget, max_nfe)
            lam_next = torch.minimum(lam_end, lam + pid.h)
            step = DPMSolverStep(model, scalar(sde.marginal(t)[0], y) * y, t, lam_next)
            y_low, y_high = (step.first(), step.second()) if order == 2 else (step.second(1 / 3), step.third())
            delta = torch.maximum(atol, rtol * torch.maximum(y_low.abs(), y_prev.abs()))
            error = torch.linalg.norm((y_low - y_high) / delta) / y.numel() ** 0.5
            if pid.propose(float(error)):
                y_prev, y, lam = y_low, y_high, lam_next
                t = sde.time_at_log_snr(lam)
        return scalar(sde.marginal(torch.tensor(sde.t_min, dtype=torch.float64))[0], y) * y

    def _check_budget(self, spent, cost, budget, max_nfe):
        if budget is not None and spent + cost > budget:
            raise SolverError(
                f"solver {self.name!r} would exceed max_nfe={max_nfe}: it has spent nfe={spent} "
                f"network calls and its next step needs {cost}; loosen rtol={self.rtol:g} / "
                f"atol={self.atol:g} or raise nfe"
            )
