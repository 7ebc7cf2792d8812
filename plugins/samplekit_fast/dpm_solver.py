"""DPM-Solver-1, -2, -3 (Lu et al. 2022, NeurIPS; noise prediction), one step in log-SNR, for dpm_fast and
dpm_adaptive, in k-diffusion's ``DPMSolver`` form (its variable t is lambda = -log s).

In the noise level s = e^{-lambda} with y = x / alpha_t, a step from lambda to lambda + h (h > 0), with
eps_0 = eps(x, t) and intermediate log-SNRs lambda + r h (s_r = e^{-lambda - r h}):

    DPM-Solver-1:       y' = y - s_1 (e^h - 1) eps_0                                   (DDIM)
    DPM-Solver-2 (r1):  u1 = y - s_r1 (e^{r1 h} - 1) eps_0
                        y' = y - s_1 (e^h - 1) eps_0 - s_1 / (2 r1) (e^h - 1) (eps(u1) - eps_0)
    DPM-Solver-3 (r1 = 1/3, r2 = 2/3):
                        u2 = y - s_r2 (e^{r2 h} - 1) eps_0
                               - s_r2 (r2 / r1) ((e^{r2 h} - 1) / (r2 h) - 1) (eps(u1) - eps_0)
                        y' = y - s_1 (e^h - 1) eps_0 - s_1 / r2 ((e^h - 1) / h - 1) (eps(u2) - eps_0)

Model outputs at an intermediate log-SNR are cached per step (DPM-Solver-2 with r1 = 1/3 and
DPM-Solver-3 share eps(u1)), so an adaptive 2/3 pair costs three calls.
"""

from __future__ import annotations

import torch

from samplekit_fast.multistep import scalar

Tensor = torch.Tensor


class DPMSolverStep:
    """One step of DPM-Solver-k from (x, t) to log-SNR ``lam_next``; ``eps(r, u)`` caches model calls."""

    def __init__(self, model, x: Tensor, t, lam_next: Tensor) -> None:
        sde = model.sde
        self.model, self.sde = model, sde
        self.lam = sde.log_snr(t)
        self.h = lam_next - self.lam
        self.y = x / scalar(sde.marginal(t)[0], x)
        pred = model.predict(x, t)
        self.eps0, self.x0 = pred.eps, pred.x0
        self._cache: dict[float, Tensor] = {}

    def level(self, r: float) -> Tensor:
        return torch.exp(-(self.lam + r * self.h))

    def eps(self, r: float, u: Tensor) -> Tensor:
        """eps at y = u, log-SNR lambda + r h (one model call the first time r is asked)."""
        if r not in self._cache:
            sde = self.sde
            t = sde.time_at_log_snr(self.lam + r * self.h)
            self._cache[r] = self.model.predict(scalar(sde.marginal(t)[0], u) * u, t).eps
        return self._cache[r]

    def first(self) -> Tensor:
        return self.y - scalar(self.level(1.0) * torch.expm1(self.h), self.y) * self.eps0

    def second(self, r1: float = 0.5) -> Tensor:
        y, e0, h = self.y, self.eps0, self.h
        u1 = y - scalar(self.level(r1) * torch.expm1(r1 * h), y) * e0
        d1 = self.eps(r1, u1) - e0
        return self.first() - scalar(self.level(1.0) / (2 * r1) * torch.expm1(h), y) * d1

    def third(self, r1: float = 1 / 3, r2: float = 2 / 3) -> Tensor:
        y, e0, h = self.y, self.eps0, self.h
        u1 = y - scalar(self.level(r1) * torch.expm1(r1 * h), y) * e0
        d1 = self.eps(r1, u1) - e0
        u2 = (
            y
            - scalar(self.level(r2) * torch.expm1(r2 * h), y) * e0
            - scalar(self.level(r2) * (r2 / r1) * (torch.expm1(r2 * h) / (r2 * h) - 1), y) * d1
        )
        d2 = self.eps(r2, u2) - e0
        return self.first() - scalar(self.level(1.0) / r2 * (torch.expm1(h) / h - 1), y) * d2

    def of_order(self, order: int) -> Tensor:
        return (self.first, self.second, self.third)[order - 1]()
