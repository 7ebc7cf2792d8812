"""The ancestral split of a step t -> s shared by the k-diffusion-style stochastic solvers.

In the scaled variable y = x / alpha with noise level s~ = sigma / alpha = e^{-lambda} (k-diffusion's
sigma), an ancestral step of strength eta from s~_t down to s~_s takes a deterministic step to
s~_down and then adds fresh noise of standard deviation s~_up (Karras et al. 2022; k-diffusion
``get_ancestral_step``); with h = lambda_s - lambda_t,

    s~_up   = min(s~_s, eta s~_s sqrt(1 - e^{-2h})) = s~_s c_up,   c_up = min(1, eta sqrt(1 - e^{-2h})),
    s~_down = sqrt(s~_s^2 - s~_up^2),                      lambda_down = lambda_s - log(1 - c_up^2) / 2,

so y_s has variance s~_down^2 + s~_up^2 = s~_s^2 from the model's point of view.  Back in x (x_s = alpha_s y_s)
the noise is sigma_s c_up z.  A first-order (exponential = Euler in s~) step from (lambda_a, sigma_a)
to lambda_b written in x without dividing by alpha (which is 0 at T on rectified flow) is

    alpha_out y_b = alpha_out [ (e^{-lambda_b} / sigma_a) x_a + (1 - e^{lambda_a - lambda_b}) D ].
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, ClassVar

import torch

from samplekit.options import Ge
from samplekit.solver import Solver
from samplekit_fast.multistep import Interval, scalar

Tensor = torch.Tensor


def ancestral_split(lam_t: Tensor, lam_s: Tensor, eta: float) -> tuple[Tensor, Tensor]:
    """(lambda_down, c_up) of an ancestral step lambda_t -> lambda_s (lambda_down = inf when c_up = 1)."""
    c_up = torch.clamp(eta * torch.sqrt(-torch.expm1(2 * (lam_t - lam_s))), max=1.0)
    return lam_s - 0.5 * torch.log1p(-c_up * c_up), c_up


def scaled_first_order(
    x: Tensor, x0: Tensor, lam_a: Tensor, sigma_a: Tensor, lam_b: Tensor, alpha_out: Tensor
) -> Tensor:
    """alpha_out [(e^{-lambda_b} / sigma_a) x + (1 - e^{lambda_a - lambda_b}) x0]: the first-order step
    a -> b in y = x / alpha, returned at scale alpha_out (alpha_b for a plain DDIM step)."""
    return (
        scalar(alpha_out * torch.exp(-lam_b) / sigma_a, x) * x - scalar(alpha_out * torch.expm1(lam_a - lam_b), x) * x0
    )


@dataclass(frozen=True)
class AncestralStep:
    """A step t -> s (its Interval), split into a deterministic part to lambda_down and noise sigma_s c_up z."""

    iv: Interval
    lam_down: Tensor
    c_up: Tensor

    @classmethod
    def of(cls, sde, t, s, eta: float) -> AncestralStep:
        iv = Interval.of(sde, t, s)
        return cls(iv, *ancestral_split(iv.lam_t, iv.lam_s, eta))

    def has_midpoint(self) -> bool:
        """Whether lambda_t and lambda_down are both finite (no midpoint from alpha_t = 0 or to c_up = 1)."""
        return bool(torch.isfinite(self.lam_down) & torch.isfinite(self.iv.lam_t))

    def to_midpoint(self, sde, x: Tensor, x0: Tensor) -> tuple[Tensor, Tensor]:
        """(x_mid, t_mid): the first-order step from (x, x0 at t) to lambda_mid = (lambda_t + lambda_down) / 2,
        the midpoint of DPM-Solver-2 and DPM-Solver++(2S) in log-SNR."""
        lam_mid = (self.iv.lam_t + self.lam_down) / 2
        t_mid = sde.time_at_log_snr(lam_mid)
        alpha_mid, _ = sde.marginal(t_mid)
        return scaled_first_order(x, x0, self.iv.lam_t, self.iv.sigma_t, lam_mid, alpha_mid), t_mid

    def noise(self, x: Tensor, noise, s_noise: float) -> Tensor:
        """sigma_s c_up s_noise z, z ~ N(0, I) drawn from the NoiseSource."""
        return scalar(self.iv.sigma_s * self.c_up * s_noise, x) * noise.randn_like(x)


class NoisySolver(Solver):
    """Base of the solvers with k-diffusion's options eta (noise strength) and s_noise (noise scale).

    The class declares the stochastic instance (``order``: its strong order); an instance with
    eta = 0 or s_noise = 0 draws no noise and is the deterministic solver of ``deterministic_order``.
    """

    stochastic = True
    #: the order of the deterministic solver an instance with eta = 0 (or s_noise = 0) is
    deterministic_order: ClassVar[float] = 1.0

    def __init__(self, eta: Annotated[float, Ge(0)] = 1.0, s_noise: Annotated[float, Ge(0)] = 1.0, **base) -> None:
        """``eta``: 1 = ancestral/DDPM noise, 0 = deterministic; ``s_noise``: 1 = unscaled noise."""
        super().__init__(**base)
        self.eta, self.s_noise = float(eta), float(s_noise)

    @property
    def noisy(self) -> bool:
        return self.eta > 0 and self.s_noise > 0

    def capabilities(self):
        caps = super().capabilities()
        return caps if self.noisy else replace(caps, stochastic=False, order=float(self.deterministic_order))
