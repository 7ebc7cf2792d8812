"""SA-Solver (Xue et al. 2023, "SA-Solver: Stochastic Adams Solver for Fast Sampling of Diffusion
Models"; diffusers ``SASolverScheduler``, ComfyUI ``sa_solver``): stochastic Adams predictor-corrector
in data prediction, one model call per step.

With tau >= 0, c = 1 + tau^2, an interval lambda_a -> lambda_b (h = lambda_b - lambda_a), past model
outputs D_k at log-SNR nodes lambda_k and u_k = lambda_k - lambda_b, the exact solution of the
tau-family SDE with D replaced by its Lagrange interpolant through the nodes is

    x_b = e^{-tau^2 h} (sigma_b / sigma_a) x_a + alpha_b c sum_k w_k D_k + sigma_b sqrt(1 - e^{-2 tau^2 h}) z,
    w_k = int_{-h}^{0} e^{c u} l_k(u) du       (l_k the Lagrange basis on the u_k; from the moments
                                                mu_m = int_{-h}^0 e^{cu} u^m du by a Vandermonde solve).

Predictor (SA-Predictor, order p): from the corrected x_i over [lambda_i, lambda_{i+1}] with nodes
lambda_i, lambda_{i-1}, ... and a fresh z_i.  Corrector (SA-Corrector, order c_ord): once D_{i+1} is known,
x_{i+1} is recomputed from x_i over the same interval with nodes lambda_{i+1}, lambda_i, ... and the same z_i.
At order 2 both add diffusers' UniPC-like term
c alpha_b (h^2/2 - int_{-h}^0 e^{cu}(u + h) du) (D_a - D_b) / (lambda_a - lambda_b) over the two nodes.
Orders warm up (p: min(p, i + 1), corrector: min(c_ord, i + 2)) and, with ``lower_order_final``, fall to
the steps left (diffusers' rule).  tau applies at model times t in [tau_t_min, tau_t_max] * T (diffusers:
timesteps 200-800 of 1000), else 0; tau = 0 everywhere is the
deterministic UniPC-like solver, of order max(p, c_ord) — but ``lower_order_final`` (diffusers'
default, kept) makes the last step first order, which caps the asymptotic order at 2.  One draw per step
(unused where tau = 0), as diffusers does.
Nodes at lambda = -inf (alpha = 0, rectified flow at T) are not kept: those steps are first order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Literal

import torch

from samplekit.options import Ge
from samplekit.solver import Solver, SolverError
from samplekit_fast.multistep import Interval, scalar

Tensor = torch.Tensor


def adams_weights(u: list[Tensor], h: Tensor, c: Tensor) -> list[Tensor]:
    """w_k = int_{-h}^0 e^{cu} l_k(u) du for the nodes u_k (float64 scalars)."""
    mu = [-torch.expm1(-c * h) / c]
    for m in range(1, len(u)):
        mu.append(-((-h) ** m) * torch.exp(-c * h) / c - m / c * mu[-1])
    if len(u) == 1:
        return mu
    vander = torch.stack([torch.stack([uk**m for uk in u]) for m in range(len(u))])
    return list(torch.linalg.solve(vander, torch.stack(mu)))


@dataclass(frozen=True)
class SAState:
    n_steps: int
    lams: tuple = ()  # finite log-SNR nodes, newest last
    x0s: tuple = ()
    last: tuple | None = None  # (t_a, x_a, z, tau, corrector order) of the previous predictor step


class SASolver(Solver):
    """SA-Solver (options tau, tau_t_min, tau_t_max, predictor_order, corrector_order, lower_order_final)."""

    name = "sa_solver"
    aliases = ("sample_sa_solver", "SASolverScheduler", "SamplerSASolver")
    order = 1.0
    stochastic = True
    nfe_per_step = 1
    default_schedule = "logsnr"

    def __init__(
        self,
        tau: Annotated[float, Ge(0)] = 1.0,
        tau_t_min: Annotated[float, Ge(0)] = 0.2,
        tau_t_max: Annotated[float, Ge(0)] = 0.8,
        predictor_order: Literal[1, 2, 3, 4] = 2,
        corrector_order: Literal[0, 1, 2, 3, 4] = 2,
        lower_order_final: bool = True,
        **base,
    ) -> None:
        super().__init__(**base)
        if not float(tau_t_min) <= float(tau_t_max):
            raise SolverError(
                f"solver {self.name!r}: need 0 <= tau_t_min <= tau_t_max (fractions of T), got "
                f"{tau_t_min!r}, {tau_t_max!r}"
            )
        self.tau, self.tau_t_min, self.tau_t_max = float(tau), float(tau_t_min), float(tau_t_max)
        self.predictor_order, self.corrector_order = int(predictor_order), int(corrector_order)
        self.lower_order_final = bool(lower_order_final)

    def capabilities(self):
        caps = super().capabilities()
        if self.tau > 0 and self.tau_t_max > self.tau_t_min:
            return caps
        order = max(self.predictor_order, self.corrector_order)
        return replace(caps, stochastic=False, order=float(min(order, 2) if self.lower_order_final else order))

    def tau_at(self, sde, t) -> float:
        return self.tau if self.tau_t_min * sde.T <= float(t) <= self.tau_t_max * sde.T else 0.0

    def init(self, model, x, ts, noise, plan):
        return SAState(len(ts) - 1)

    def update(self, x, t_a, t_b, lams, x0s, z, tau, sde):
        """x_b from x_a with nodes lams/x0s (newest first; one node only from lambda_a = -inf)."""
        iv = Interval.of(sde, t_a, t_b)
        if not bool(torch.isfinite(iv.lam_t)):
            lams, x0s = lams[:1], x0s[:1]
        h, c = iv.h, torch.as_tensor(1 + tau * tau, dtype=torch.float64)
        decay = torch.exp(-tau * tau * h) if tau > 0 else torch.ones_like(h)
        w = adams_weights([lam - iv.lam_s for lam in lams], h, c)
        out = scalar(decay * iv.sigma_s / iv.sigma_t, x) * x
        for wk, dk in zip(w, x0s):
            out = out + scalar(iv.alpha_s * c * wk, x) * dk
        if len(lams) == 2:
            extra = h * h / 2 - (h * c - 1 + torch.exp(-c * h)) / (c * c)
            out = out + scalar(iv.alpha_s * c * extra / (lams[0] - lams[1]), x) * (x0s[0] - x0s[1])
        if tau > 0:
            out = out + scalar(iv.sigma_s * torch.sqrt(-torch.expm1(-2 * tau * tau * h)), x) * z
        return out

    def step(self, model, i, t0, t1, x, state: SAState, noise, plan):
        sde, n = model.sde, state.n_steps
        lam = sde.log_snr(t0)
        x0 = model.predict(x, t0).x0
        past_lams, past_x0s = tuple(reversed(state.lams)), tuple(reversed(state.x0s))  # newest first
        if state.last is not None and state.last[4] > 0:  # SA-Corrector with the new output
            t_a, x_a, z_a, tau_a, k = state.last
            x = self.update(x_a, t_a, t0, ((lam,) + past_lams)[:k], ((x0,) + past_x0s)[:k], z_a, tau_a, sde)
        keep = max(self.predictor_order, self.corrector_order - 1)
        if bool(torch.isfinite(lam)):
            state = replace(state, lams=(state.lams + (lam,))[-keep:], x0s=(state.x0s + (x0,))[-keep:])
        z = noise.randn_like(x)
        warm = min(i, keep)
        p = min(self.predictor_order, warm + 1)
        k_next = min(self.corrector_order, warm + 2)
        if self.lower_order_final:
            p, k_next = min(p, n - i), min(k_next, n - i + 1)
        lams, x0s = ((lam,) + past_lams)[:p], ((x0,) + past_x0s)[:p]  # SA-Predictor
        tau = self.tau_at(sde, t0)
        x_next = self.update(x, t0, t1, lams, x0s, z, tau, sde)
        return x_next, replace(state, last=(t0, x, z, tau, k_next)), x0
