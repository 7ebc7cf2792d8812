"""The EDM sampler (Karras et al. 2022, Alg. 2) in the noise level s_t = sigma_t / alpha_t = e^{-lambda_t}.

With y = x / alpha_t the probability-flow ODE of every SDE with Gaussian marginals reads
    dy/ds = (y - x0(alpha_t y, t)) / s,
so one step s_i -> s_{i+1} (x0 the model's denoised prediction) is
    churn (optional): s^ = min(s_i (1 + gamma_i), s_T),  y^ = y_i + sqrt(s^2 - s_i^2) S_noise z,
                      gamma_i = min(S_churn / n, sqrt(2) - 1) if S_tmin <= s_i <= S_tmax else 0
    Euler:            d = (y^ - x0(s^)) / s^,           y' = y^ + (s_{i+1} - s^) d
    Heun correction:  d' = (y' - x0(s_{i+1})) / s_{i+1}, y_{i+1} = y^ + (s_{i+1} - s^) (d + d') / 2
and x_{i+1} = alpha_{i+1} y_{i+1}.  Times of s^ come from ``sde.t_from_log_snr(-log s^)``.
The last step, onto t_min, is Euler (EDM's last step to sigma = 0): n steps cost 2 n - 1 calls,
so a budget of N calls walks ceil(N / 2) steps (default ``schedule="karras"``, rho = 7).
``final_euler=False`` is k-diffusion's ``sample_heun`` (the alias selects it): a Heun step onto every
s_{i+1} > 0, Euler only onto s = 0, so a grid down to t_min costs 2 n calls and a k-diffusion sigma
list ending in 0 costs 2 n - 1 (there both rules coincide: the step onto 0 is the last one).
Churn (S_churn > 0) makes the sampler stochastic (z from the NoiseSource); the default S_churn = 0
is the deterministic second-order Heun sampler.  s^ is capped at s_T, where the model is defined.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Annotated

import torch

from samplekit.options import Ge, Gt
from samplekit.solver import Plan, Solver, SolverError
from samplekit_fast.multistep import scalar


class EDMHeun(Solver):
    """EDM Heun sampler (Karras et al. 2022, Alg. 2) with optional churn S_churn, S_tmin, S_tmax, S_noise."""

    name = "edm_heun"
    aliases = ("sample_heun", "HeunDiscreteScheduler", "heun")
    # k-diffusion's sample_heun (and ComfyUI's heun): Heun onto every sigma > 0, Euler only onto sigma = 0
    alias_options = {
        "sample_heun": {"final_euler": False},
        "HeunDiscreteScheduler": {"final_euler": False},  # diffusers' Heun: Heun onto sigma_min, Euler to 0
        "heun": {"final_euler": False},
    }
    steps_to_zero = True  # the Euler step onto s = 0 lands on x0, as k-diffusion's
    order = 2.0
    stochastic = False  # the default S_churn = 0; see capabilities()
    nfe_per_step = 2
    default_schedule = "karras"

    def __init__(
        self,
        S_churn: Annotated[float, Ge(0)] = 0.0,
        S_tmin: Annotated[float, Ge(0)] = 0.0,
        S_tmax: Annotated[float, Ge(0)] = math.inf,
        S_noise: Annotated[float, Gt(0)] = 1.0,
        final_euler: bool = True,
        **base,
    ) -> None:
        super().__init__(**base)
        self.final_euler = bool(final_euler)
        if not float(S_tmin) <= float(S_tmax):
            raise SolverError(
                f"solver {self.name!r}: need 0 <= S_tmin <= S_tmax, got S_tmin={S_tmin!r}, S_tmax={S_tmax!r}"
            )
        self.S_churn, self.S_tmin, self.S_tmax, self.S_noise = map(float, (S_churn, S_tmin, S_tmax, S_noise))

    def capabilities(self):
        """The class declares the default (S_churn = 0); an instance with S_churn > 0 is stochastic."""
        return replace(super().capabilities(), stochastic=self.S_churn > 0)

    def plan(self, nfe: int, calls_per_eval: int = 1) -> Plan:
        """n steps cost 2 n - 1 calls (the last is Euler), or 2 n with ``final_euler=False``: the largest n
        within the budget."""
        budget = nfe // calls_per_eval - (1 if self.denoise_final else 0)
        need = 1 if self.final_euler else 2
        if budget < need:
            what = "1 for its single Euler step" if self.final_euler else "2 for its single Heun step"
            self.refuse_budget(nfe, calls_per_eval, need + (1 if self.denoise_final else 0), what)
        return Plan((budget + 1) // 2 if self.final_euler else budget // 2, nfe, calls_per_eval)

    def plan_for_grid(self, n_steps: int, calls_per_eval: int = 1) -> Plan:
        """A grid of n steps: 2 n - 1 calls (2 n with ``final_euler=False`` unless the grid ends at 0)."""
        plan = super().plan_for_grid(n_steps, calls_per_eval)
        return replace(plan, nfe=plan.nfe - calls_per_eval) if self.final_euler else plan

    def init(self, model, x, ts, noise, plan):
        return len(ts) - 1

    def step(self, model, i, t0, t1, x, n_steps, noise, plan):
        sde = model.sde
        s_max = torch.exp(-sde.log_snr(torch.as_tensor(sde.T, dtype=t0.dtype)))
        s0, s1 = torch.exp(-sde.log_snr(t0)), torch.exp(-sde.log_snr(t1))
        y = x / scalar(sde.marginal(t0)[0], x)
        t_hat, s_hat = t0, s0
        if self.S_churn > 0:
            in_range = (s0 >= self.S_tmin) & (s0 <= self.S_tmax)
            gamma = torch.where(in_range, min(self.S_churn / n_steps, math.sqrt(2) - 1), 0.0)
            s_hat = torch.minimum(s0 * (1 + gamma), s_max)
            t_hat = torch.where(s_hat > s0, sde.t_from_log_snr(-torch.log(s_hat)).clamp_max(sde.T), t0)
            y = y + scalar((s_hat**2 - s0**2).clamp_min(0).sqrt() * self.S_noise, x) * noise.randn_like(x)
        x0 = model.predict(scalar(sde.marginal(t_hat)[0], x) * y, t_hat).x0
        d = (y - x0) / scalar(s_hat, x)
        y_next = y + scalar(s1 - s_hat, x) * d
        if s1 > 0 and (i < n_steps - 1 or not self.final_euler):
            x0_next = model.predict(scalar(sde.marginal(t1)[0], x) * y_next, t1).x0
            d_next = (y_next - x0_next) / scalar(s1, x)
            y_next = y + scalar(s1 - s_hat, x) * (d + d_next) / 2
        return scalar(sde.marginal(t1)[0], x) * y_next, n_steps, x0
