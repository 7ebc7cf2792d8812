"""Shared pieces of the exponential-integrator solvers (DPM-Solver++, UniPC), in the README's notation.

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

from samplekit.solver import Solver, SolverError

Tensor = torch.Tensor

#: DPM-Solver++'s (and diffusers' DPMSolverMultistep's) cut-off: it lowers the last steps only below this
#: many steps; samplekit lowers them at every step count (see ``MultistepSolver``)
LOWER_ORDER_FINAL_BELOW = 15


def phi_weights(h: Tensor, k_max: int) -> list[Tensor]:
    """[I_0(h), ..., I_k_max(h)] (float64 scalars) by the recurrence I_k = h^k / k! - I_{k-1}."""
    weights = [-torch.expm1(-h)]
    for k in range(1, k_max + 1):
        weights.append(h**k / math.factorial(k) - weights[-1])
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
    def of(cls, sde, t, s) -> Interval:
        return cls(*coefficients(sde, t), *coefficients(sde, s))

    @property
    def h(self) -> Tensor:
        return self.lam_s - self.lam_t

    def first_order(self, x: Tensor, x0: Tensor) -> Tensor:
        """x_s = (sigma_s / sigma_t) x_t + alpha_s I_0(h) x0, I_0 = 1 - e^{-h} (DDIM, DPM-Solver++(1))."""
        return scalar(self.sigma_s / self.sigma_t, x) * x - scalar(self.alpha_s * torch.expm1(-self.h), x) * x0


@dataclass(frozen=True)
class History:
    """The grid size, the last few (lambda, x0) model outputs (most recent last) and the planned orders."""

    n_steps: int
    lams: tuple[Tensor, ...] = ()
    x0s: tuple[Tensor, ...] = ()
    orders: tuple[int, ...] = ()

    def push(self, lam: Tensor, x0: Tensor, keep: int) -> History:
        return History(self.n_steps, (self.lams + (lam,))[-keep:], (self.x0s + (x0,))[-keep:], self.orders)


class MultistepSolver(Solver):
    """One model call per step.  The order of step i of an n-step grid is planned once (``plan_orders``):

        p_i = min(solver_order, i + 1)              (warm-up: only i earlier outputs exist), and with
        p_i = min(p_i, n - i)                       ``lower_order_final`` (default on), at every n:

    the last step is first order, the one before at most second, and so on: diffusers' UniPC rule
    (``lower_order_final``) and, in effect, its DPM-Solver++ default (``final_sigmas_type="zero"`` forces a
    first-order last step), where DPM-Solver++'s own rule lowers the last steps only on grids shorter
    than 15 steps: from 15 steps that rule extrapolates the history over a last log-SNR step that on grids
    uniform in t is 4-6 times the one before (lambda ~ -log(t) / 2 near t_min).

    Always, not only when the last step is much longer than the one before: near t_min the denoised
    estimate saturates (x0 -> x, its lambda-derivative O(sigma^2)), so a polynomial extrapolation of the
    x0 history over the last step overshoots even at step ratio ~1.1, while a first-order last step costs
    ~(h^2 / 2) |x0'| = O(h^2 sigma_min^2) and leaves the fitted orders unchanged.  One rule for every n
    also leaves no step count where it switches.
    ``lower_order_final=False``: every step after the warm-up has full order (k-diffusion's dpmpp_2m/3m).
    """

    #: the highest order of a step (the number of model outputs it combines)
    solver_order: int = 2

    def __init__(self, lower_order_final: bool = True, orders: tuple[int, ...] | None = None, **base) -> None:
        """``orders``: the order of every step, as a peer plans them (e.g. diffusers' DPMSolverMultistep
        rule, given by ``samplekit.diffusers.conventions.scheduler_solver``); each within 1..solver_order and
        at most i + 1 at step i, one per grid step.  None: planned by ``lower_order_final`` (class docstring)."""
        super().__init__(**base)
        self.lower_order_final = bool(lower_order_final)
        self.orders = None if orders is None else tuple(int(p) for p in orders)
        if self.orders is not None and any(p < 1 or p > i + 1 for i, p in enumerate(self.orders)):
            self.check_orders(self.orders)

    def init(self, model, x, ts, noise, plan):
        return History(len(ts) - 1, orders=self.plan_orders(len(ts) - 1))

    def plan_orders(self, n: int) -> tuple[int, ...]:
        """The order of each step of an n-step grid (see the class docstring), or the given ``orders``."""
        if self.orders is not None:
            if len(self.orders) != n:
                raise SolverError(
                    f"{self.name}: orders= plans {len(self.orders)} steps but the grid has {n}; pass one "
                    "order per step of ts"
                )
            return self.check_orders(self.orders)
        orders = [min(self.solver_order, i + 1) for i in range(n)]
        if self.lower_order_final:
            orders = [min(p, n - i) for i, p in enumerate(orders)]
        return tuple(orders)

    def check_orders(self, orders: tuple[int, ...]) -> tuple[int, ...]:
        """``orders`` if step i asks for an order within 1..min(solver_order, i + 1), else a SolverError."""
        bad = [i for i, p in enumerate(orders) if not 1 <= p <= min(self.solver_order, i + 1)]
        if bad:
            raise SolverError(
                f"{self.name}: orders={orders} asks step {bad[0]} for order {orders[bad[0]]}; step i takes "
                f"an order within 1..min({self.solver_order}, i + 1) (only i earlier outputs exist)"
            )
        return orders

    def step_order(self, i: int, n_steps: int) -> int:
        """DPM-Solver++'s rule: warm-up, and the last steps lowered only below 15 steps (kept for solvers
        that reproduce a peer with that rule, e.g. deis against diffusers' DEISMultistepScheduler)."""
        order = min(self.solver_order, i + 1)
        if self.lower_order_final and n_steps < LOWER_ORDER_FINAL_BELOW:
            order = min(order, n_steps - i)
        return order
