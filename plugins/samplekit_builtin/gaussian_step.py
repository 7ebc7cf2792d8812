"""The Gaussian posterior of the forward process between two grid times, shared by ddpm, ddim and pc.

For any SDE with X_t | X_0 ~ N(alpha_t X_0, sigma_t^2 I) and s < t:
    alpha_{t|s} = alpha_t / alpha_s,   sigma_{t|s}^2 = sigma_t^2 - alpha_{t|s}^2 sigma_s^2,
    q(x_s | x_t, x0) = N(c_x x_t + c_x0 x0, var) with
    c_x = alpha_{t|s} sigma_s^2 / sigma_t^2,  c_x0 = alpha_s sigma_{t|s}^2 / sigma_t^2,
    var = sigma_{t|s}^2 sigma_s^2 / sigma_t^2.
With lambda = log(alpha / sigma), the ratio r = sigma_{t|s}^2 / sigma_t^2 = 1 - exp(2 (lambda_t - lambda_s))
is computed with expm1, so small steps do not lose it to cancellation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from samplekit.sde import SDE, as_time

Tensor = torch.Tensor


@dataclass(frozen=True)
class GaussianStep:
    """Scalar coefficients (tensors of x's dtype) of one step from t down to s."""

    alpha_s: Tensor
    sigma_s: Tensor
    alpha_ts: Tensor  # alpha_{t|s}
    sigma_ts: Tensor  # sigma_{t|s}
    c_x: Tensor
    c_x0: Tensor
    var: Tensor

    def mean(self, x: Tensor, x0: Tensor) -> Tensor:
        return self.c_x * x + self.c_x0 * x0


def gaussian_step(sde: SDE, t, s, like: Tensor) -> GaussianStep:
    """The coefficients of q(x_s | x_t, x0) for scalar times t > s, in ``like``'s dtype and device."""
    t, s = as_time(t, like), as_time(s, like)
    alpha_t, sigma_t = sde.marginal(t)
    alpha_s, sigma_s = sde.marginal(s)
    two_dlam = 2 * (sde.log_snr(t) - sde.log_snr(s))
    decay = torch.exp(two_dlam)  # alpha_{t|s}^2 sigma_s^2 / sigma_t^2
    r = (-torch.expm1(two_dlam)).clamp_min(0)  # sigma_{t|s}^2 / sigma_t^2 = 1 - decay
    alpha_ts = alpha_t / alpha_s
    return GaussianStep(
        alpha_s=alpha_s,
        sigma_s=sigma_s,
        alpha_ts=alpha_ts,
        sigma_ts=sigma_t * r.sqrt(),
        c_x=decay / alpha_ts,
        c_x0=alpha_s * r,
        var=r * sigma_s * sigma_s,
    )
