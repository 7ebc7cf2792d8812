"""The reverse SDE in signal-to-noise time, where it does not contract: dy = D dtau + dW_tau.

With tau = alpha_t^2 / sigma_t^2 (the SNR, increasing as t runs from T down to t_min) and
y = (alpha_t / sigma_t^2) x, Ito's formula and (sigma_t^2)' = 2 a(t) sigma_t^2 + g(t)^2 turn the
reverse SDE dX = [f - g^2 s] dt + g dW_bar (x + sigma^2 s = alpha D) into

    dy = D(x, t) dtau + dW_tau,   x = (sigma_t^2 / alpha_t) y,   d tau = -(g^2 alpha^2 / sigma^4) dt,

the stochastic-localisation form: drift the denoiser D = E[X_0 | X_t = x], noise a standard
Brownian motion in tau.  Its drift's Jacobian dD/dy = Cov[X_0 | X_t = x] (Tweedie) is positive
semi-definite, so solutions never contract -- which a method with a parasitic mode needs (see
``reversible_heun``).  One network call per drift evaluation; the time t of a tau is found by
``sde.t_from_log_snr(log(tau) / 2)``.
"""

from __future__ import annotations

import torch


def snr(sde, ts):
    """tau = alpha_t^2 / sigma_t^2 = exp(2 lambda_t) at the times ts."""
    return torch.exp(2 * sde.log_snr(ts))


def scale(sde, t, like):
    """phi_t = alpha_t / sigma_t^2, with y = phi_t x, in like's dtype and device."""
    alpha, sigma = sde.marginal(torch.as_tensor(t, dtype=torch.float64))
    return (alpha / sigma**2).to(dtype=like.dtype, device=like.device)


class SNRTimeSDE:
    """A torchsde SDE object for dy = D dtau + dW_tau (diagonal unit noise; Ito = Stratonovich)."""

    noise_type = "diagonal"

    def __init__(self, model, shape, sde_type: str = "stratonovich") -> None:
        self.model, self.shape, self.sde_type = model, tuple(shape), sde_type
        self.shape_probe_at = None  # a state whose drift is only sdeint's shape check (value discarded)

    def time(self, tau):
        sde = self.model.sde
        lam = 0.5 * torch.log(torch.as_tensor(tau, dtype=torch.float64))
        return sde.time_at_log_snr(lam)

    def f(self, tau, y):
        if y is self.shape_probe_at:
            self.shape_probe_at = None
            return torch.zeros_like(y)
        t = self.time(tau)
        x = y / scale(self.model.sde, t, y)
        return self.model.predict(x.reshape(-1, *self.shape), t).x0.reshape(y.shape)

    def g(self, tau, y):
        return torch.ones_like(y)
