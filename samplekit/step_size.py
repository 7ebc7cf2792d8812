"""Step-size control for adaptive solvers, beside the solver (the shape of diffrax's step-size controllers).

A controller is an immutable configuration plus an explicit state: ``init(h0) -> state`` and
``adapt_step_size(y_low, y_high, y_prev, error_order, state) -> (accept, h_next, state)``, so one
controller serves any number of runs and keeps nothing on itself.

:class:`PIDController` (Söderlind 2003, "Digital filters in adaptive time-stepping"; as k-diffusion's
``PIDStepSizeController``, used by DPM-Solver-12/23, Lu et al. 2022, Alg. 4-5):

    delta = max(atol, rtol max(|y_low|, |y_prev|)),   E = ||(y_low - y_high) / delta||_2 / sqrt(numel),
    f = prod_k (1 / (E_k + eps))^{b_k},  b = ((p + i + d), -(p + 2 d), d) / error_order,
    h_next = h (1 + atan(f - 1)),        accepted when 1 + atan(f - 1) >= safety,

E_0 the current inverse-error term, E_1, E_2 those of the last two accepted steps (the integral part
``icoeff`` alone is the classic elementary controller h (1/E)^{1/order}).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from samplekit.errors import OptionError

Tensor = torch.Tensor


@dataclass(frozen=True)
class PIDState:
    """The controller's state: the step size to try next and the last inverse errors (newest first)."""

    h: float
    inv_errors: tuple[float, ...] = ()


@dataclass(frozen=True)
class PIDController:
    """PID step-size control on the mixed absolute/relative error of an embedded pair."""

    rtol: float
    atol: float
    pcoeff: float = 0.0
    icoeff: float = 1.0
    dcoeff: float = 0.0
    safety: float = 0.81
    eps: float = 1e-8

    def __post_init__(self) -> None:
        if self.rtol == 0 and self.atol == 0:
            raise OptionError("rtol and atol are both 0; give at least one a positive tolerance")

    def init(self, h0: float) -> PIDState:
        """The state before the first attempt, with first step size ``h0``."""
        return PIDState(float(h0))

    def error(self, y_low: Tensor, y_high: Tensor, y_prev: Tensor) -> Tensor:
        """E: the RMS of the embedded-pair difference over the tolerance scale (one number per run)."""
        atol = torch.tensor(self.atol, dtype=y_low.dtype, device=y_low.device)
        rtol = torch.tensor(self.rtol, dtype=y_low.dtype, device=y_low.device)
        delta = torch.maximum(atol, rtol * torch.maximum(y_low.abs(), y_prev.abs()))
        return torch.linalg.norm((y_low - y_high) / delta) / y_low.numel() ** 0.5

    def adapt_step_size(
        self, y_low: Tensor, y_high: Tensor, y_prev: Tensor, error_order: float, state: PIDState
    ) -> tuple[bool, float, PIDState]:
        """(accept this attempt, the next step size, the new state) from the attempt's embedded pair."""
        inv = 1 / (float(self.error(y_low, y_high, y_prev)) + self.eps)
        history = state.inv_errors or (inv, inv, inv)
        errors = (inv, *history[1:])
        b = (
            (self.pcoeff + self.icoeff + self.dcoeff) / error_order,
            -(self.pcoeff + 2 * self.dcoeff) / error_order,
            self.dcoeff / error_order,
        )
        factor = 1 + math.atan(math.prod(e**k for e, k in zip(errors, b)) - 1)
        accept = factor >= self.safety
        kept = (errors[0], errors[0], errors[1]) if accept else errors
        h = state.h * factor
        return accept, h, PIDState(h, kept)


__all__ = ["PIDController", "PIDState"]
