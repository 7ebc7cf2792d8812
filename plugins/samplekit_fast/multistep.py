"""Shared pieces of the exponential-integrator solvers (DPM-Solver++, UniPC), in DESIGN notation.

With lambda_t = log(alpha_t / sigma_t) the probability-flow ODE has the exact solution
(data prediction, x0 = the model's denoised estimate, h = lambda_s - lambda_t > 0)

    x_s = (sigma_s / sigma_t) x_t + alpha_s int_0^h e^{u - h} x0(lambda_t + u) du,

and with x0(lambda_t + u) = sum_k x0^(k) u^k / k! the weights are
    I_k(h) = int_0^h e^{u - h} u^k / k! du,   I_0 = 1 - e^{-h},   I_k = h^k / k! - I_{k-1}.
A multistep solver estimates the derivatives x0^(k) from the x0 of earlier steps, kept in the
solver state (never recomputed), and warms up with lower orders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from samplekit.solver import Solver

Tensor = torch.Tensor

#: below this many grid steps, ``lower_order_final`` lowers the order of the last steps
LOWER_ORDER_FINAL_BELOW = 15


def phi_weights(h: Tensor, k_max: int) -> list[Tensor]:
    """[I_0(h), ..., I_k_max(h)] (float64 scalars) by the recurrence I_k = h^k / k! - I_{k-1}."""
    weights = [-torch.expm1(-h)]
    for k in range(1, k_max + 1):
        weights.append(h ** k / math.factorial(k) - weights[-1])
    return weights


def coefficients(sde, t) -> tuple[Tensor, Tensor, Tensor]:
    """(lambda_t, alpha_t, sigma_t) at a grid time (float64 scalars)."""
    alpha, sigma = sde.marginal(t)
    return sde.log_snr(t), alpha, sigma


def scalar(value: Tensor, x: Tensor) -> Tensor:
    """A float64 coefficient in x's dtype and device."""
    return value.to(dtype=x.dtype, device=x.device)


@dataclass(frozen=True)
class Interval:
    """A step t -> s: lambda, alpha, sigma at both ends (float64 scalars), h = lambda_s - lambda_t."""

    lam_t: Tensor
    alpha_t: Tensor
    sigma_t: Tensor
    lam_s: Tensor
    alpha_s: Tensor
    sigma_s: Tensor

    @classmethod
    def of(cls, sde, t, s) -> "Interval":
        return cls(*coefficients(sde, t), *coefficients(sde, s))

    @property
    def h(self) -> Tensor:
        return self.lam_s - self.lam_t

    def first_order(self, x: Tensor, x0: Tensor) -> Tensor:
        """x_s = (sigma_s / sigma_t) x_t + alpha_s I_0(h) x0, I_0 = 1 - e^{-h} (DDIM, DPM-Solver++(1))."""
        return scalar(self.sigma_s / self.sigma_t, x) * x - scalar(self.alpha_s * torch.expm1(-self.h), x) * x0


@dataclass(frozen=True)
class History:
    """The grid size and the last few (lambda, x0) model outputs, most recent last."""

    n_steps: int
    lams: tuple[Tensor, ...] = ()
    x0s: tuple[Tensor, ...] = ()

    def push(self, lam: Tensor, x0: Tensor, keep: int) -> "History":
        return History(self.n_steps, (self.lams + (lam,))[-keep:], (self.x0s + (x0,))[-keep:])


class MultistepSolver(Solver):
    """One model call per step; the order of step i is min(order, i + 1) (warm-up) and, with
    ``lower_order_final`` on grids of fewer than 15 steps, at most n - i (the last step is first
    order), as DPM-Solver++ does for small step counts."""

    #: the highest order of a step (the number of model outputs it combines)
    solver_order: int = 2

    def __init__(self, lower_order_final: bool = True, **base) -> None:
        super().__init__(**base)
        self.lower_order_final = bool(lower_order_final)

    def init(self, model, x, ts, noise):
        return History(len(ts) - 1)

    def step_order(self, i: int, n_steps: int) -> int:
        order = min(self.solver_order, i + 1)
        if self.lower_order_final and n_steps < LOWER_ORDER_FINAL_BELOW:
            order = min(order, n_steps - i)
        return order
