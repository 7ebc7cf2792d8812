"""Restart sampling (Xu et al. 2023, "Restart Sampling for Improving Generative Processes";
ComfyUI ``sample_restart`` / ``RestartSampler``).

Heun steps of the probability-flow ODE in the noise level s = sigma / alpha (y = x / alpha,
eps = (y - x0) / s, Karras et al. 2022) on the main grid; at the grid point nearest s = ``restart_min``
the sampler restarts ``restart_times`` times: forward-noise back to the main grid's point nearest
s = ``restart_max`` and integrate down again with ``restart_steps`` Heun steps on a Karras sub-grid:

    Heun s_a -> s_b:  x0_a, eps_a = D(x_a), eps(x_a);  x' = alpha_b (x0_a + s_b eps_a);  eps_b = eps(x', t_b),
                      x_b = alpha_b [x0_a + s_a eps_a + (s_b - s_a)(eps_a + eps_b) / 2],
    restart jump s_lo -> s_hi:  x_hi = (alpha_hi / alpha_lo) x_lo + alpha_hi s_noise sqrt(s_hi^2 - s_lo^2) z,

the jump being the exact forward kernel from t_lo to t_hi (so restarting keeps the marginals for an
exact ODE; the added noise contracts the ODE's accumulated error, the paper's point).  The step from
s_a = inf (alpha_a = 0, rectified flow at T) is the core's (``sampling.alpha_zero_step``).
Budget (``plan``): N calls give n = N // 2 Heun steps in all; with ``restart_steps`` and
``restart_times`` unset, ComfyUI's rule:
below 20 steps no restart, else 9 restart steps once, from 36 steps n // 4 restart steps twice; the
main grid takes the rest.  Stochastic (its restarts draw noise); second order in its ODE steps.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated

import torch

from samplekit.options import Ge, Gt
from samplekit.solver import Plan, Solver, SolverError
from samplekit_fast.multistep import scalar


def heun(model, x, t_a, t_b):
    """One Heun step of the probability-flow ODE in s; (x_b, x0_a)."""
    sde = model.sde
    s_a, s_b = torch.exp(-sde.log_snr(t_a)), torch.exp(-sde.log_snr(t_b))
    alpha_b, _ = sde.marginal(t_b)
    p = model.predict(x, t_a)
    x_euler = scalar(alpha_b, x) * (p.x0 + scalar(s_b, x) * p.eps)
    eps_b = model.predict(x_euler, t_b).eps
    y_b = p.x0 + scalar(s_a, x) * p.eps + scalar((s_b - s_a) / 2, x) * (p.eps + eps_b)
    return scalar(alpha_b, x) * y_b, p.x0


@dataclass(frozen=True)
class Restarts:
    """How the Heun steps are shared: main grid steps, steps of each restart, number of restarts."""

    main_steps: int
    restart_steps: int
    restart_times: int


class Restart(Solver):
    """Restart sampling: Heun ODE steps with forward-noised restarts (options s_noise, restart_min,
    restart_max, restart_steps, restart_times)."""

    name = "restart"
    aliases = ("sample_restart", "RestartSampler", "restart_sampler")
    order = 2.0
    stochastic = True
    nfe_per_step = 2
    default_schedule = "karras"

    def __init__(
        self,
        s_noise: Annotated[float, Ge(0)] = 1.0,
        restart_min: Annotated[float, Gt(0)] = 0.1,
        restart_max: Annotated[float, Gt(0)] = 2.0,
        restart_steps: Annotated[int, Ge(0)] | None = None,
        restart_times: Annotated[int, Ge(0)] | None = None,
        **base,
    ) -> None:
        super().__init__(**base)
        if not float(restart_min) < float(restart_max):
            raise SolverError(
                f"solver {self.name!r}: need 0 < restart_min < restart_max (noise levels "
                f"sigma/alpha), got restart_min={restart_min!r}, restart_max={restart_max!r}"
            )
        self.s_noise, self.restart_min, self.restart_max = float(s_noise), float(restart_min), float(restart_max)
        self.restart_steps, self.restart_times = restart_steps, restart_times

    def capabilities(self):
        quiet = self.s_noise == 0 or self.restart_times == 0 or self.restart_steps == 0
        return replace(super().capabilities(), stochastic=not quiet)

    def restarts(self, steps: int) -> Restarts:
        """How n Heun steps are shared between the main grid and the restarts."""
        if self.restart_steps is None and self.restart_times is None:
            if steps < 20:
                return Restarts(steps, 0, 0)
            r, k = (steps // 4, 2) if steps >= 36 else (9, 1)
        else:
            r, k = self._explicit()
        if steps - r * k < 1:
            raise SolverError(
                f"solver {self.name!r}: a budget of {steps} Heun steps (2 calls each) leaves none "
                f"for the main grid after {k} restart(s) of {r} steps; raise nfe or lower them"
            )
        return Restarts(steps - r * k, r, k)

    def _explicit(self) -> tuple[int, int]:
        return (
            9 if self.restart_steps is None else int(self.restart_steps),
            1 if self.restart_times is None else int(self.restart_times),
        )

    def plan(self, nfe: int, calls_per_eval: int = 1) -> Plan:
        """The Heun steps the budget buys, shared by ``restarts``; ``per_step`` is the Restarts."""
        restarts = self.restarts(super().plan(nfe, calls_per_eval).n_steps)
        return Plan(restarts.main_steps, nfe, calls_per_eval, (restarts,))

    def plan_for_grid(self, n_steps: int, calls_per_eval: int = 1) -> Plan:
        """A grid given as is: no restarts under ComfyUI's rule (it needs the budget), else the explicit ones."""
        plan = super().plan_for_grid(n_steps, calls_per_eval)
        if self.restart_steps is None and self.restart_times is None:
            return replace(plan, per_step=(Restarts(n_steps, 0, 0),))
        r, k = self._explicit()
        return replace(plan, nfe=plan.nfe + r * k * 2 * calls_per_eval, per_step=(Restarts(n_steps, r, k),))

    def init(self, model, x, ts, noise, plan):
        n = len(ts) - 1
        planned = plan.per_step[0] if plan.per_step else None
        if planned is not None and planned.main_steps == n:
            restarts = planned
        elif self.restart_steps is None and self.restart_times is None:
            restarts = Restarts(n, 0, 0)  # the core took the first step (alpha_T = 0): ComfyUI's rule needs the budget
        else:
            restarts = Restarts(n, *self._explicit())
        s = torch.exp(-model.sde.log_snr(ts))
        lo, hi = int(torch.argmin((s - self.restart_min).abs())), int(torch.argmin((s - self.restart_max).abs()))
        if restarts.restart_steps == 0 or restarts.restart_times == 0 or not hi < lo or lo == 0:
            return None
        rho, u = 7.0, torch.linspace(0, 1, restarts.restart_steps + 1, dtype=torch.float64)
        s_sub = (s[hi] ** (1 / rho) + u * (s[lo] ** (1 / rho) - s[hi] ** (1 / rho))) ** rho
        sub = model.sde.time_at_log_snr(-torch.log(s_sub))
        sub[0], sub[-1] = ts[hi], ts[lo]
        return lo - 1, sub, restarts.restart_times

    def step(self, model, i, t0, t1, x, state, noise, plan):
        x, x0 = heun(model, x, t0, t1)
        if state is not None and i == state[0]:
            _, sub, times = state
            sde = model.sde
            (a_lo, s_lo), (a_hi, s_hi) = sde.marginal(sub[-1]), sde.marginal(sub[0])
            s_lo, s_hi = s_lo / a_lo, s_hi / a_hi
            for _ in range(times):
                jump = a_hi * self.s_noise * torch.sqrt(s_hi**2 - s_lo**2)
                x = scalar(a_hi / a_lo, x) * x + scalar(jump, x) * noise.randn_like(x)
                for j in range(len(sub) - 1):
                    x, _ = heun(model, x, sub[j], sub[j + 1])
        return x, state, x0
