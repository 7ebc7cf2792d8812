"""Time grids T = t_0 > t_1 > ... > t_n = t_min for fixed-step solvers (float64)."""

from __future__ import annotations

import torch

from samplekit.checks import positive_int
from samplekit.errors import InvalidArgumentError
from samplekit.sde import SDE

Tensor = torch.Tensor


def _check_steps(n_steps: int) -> int:
    return positive_int(n_steps, "n_steps")


def _pin_ends(ts: Tensor, sde: SDE) -> Tensor:
    ts[0], ts[-1] = sde.T, sde.t_min
    return ts


def uniform(sde: SDE, n_steps: int) -> Tensor:
    """Uniform in t: t_i = T + i/n (t_min - T)."""
    return torch.linspace(sde.T, sde.t_min, _check_steps(n_steps) + 1, dtype=torch.float64)


def quadratic(sde: SDE, n_steps: int) -> Tensor:
    """Quadratic in t (DDIM's 'quad'): t_i = t_min + (T - t_min) (1 - i/n)^2, denser near t_min."""
    u = torch.linspace(1.0, 0.0, _check_steps(n_steps) + 1, dtype=torch.float64)
    return _pin_ends(sde.t_min + (sde.T - sde.t_min) * u * u, sde)


def karras(sde: SDE, n_steps: int, rho: float = 7.0) -> Tensor:
    """Karras et al. (2022) in the noise level s = sigma_t / alpha_t = exp(-lambda_t):
    s_i = (s_max^(1/rho) + i/n (s_min^(1/rho) - s_max^(1/rho)))^rho."""
    if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not rho > 0 or rho == float("inf"):
        raise InvalidArgumentError(
            f"schedule option rho={rho!r} must be a positive finite number (7 is the EDM default)"
        )
    n = _check_steps(n_steps)
    s_max, s_min = _noise_level(sde, sde.T), _noise_level(sde, sde.t_min)
    u = torch.linspace(0.0, 1.0, n + 1, dtype=torch.float64)
    # k-diffusion's get_sigmas_karras operation for operation (its list in float64, to the last bit)
    max_inv_rho, min_inv_rho = s_max ** (1 / rho), s_min ** (1 / rho)
    s = (max_inv_rho + u * (min_inv_rho - max_inv_rho)) ** rho
    return _pin_ends(sde.t_from_noise_level(s), sde)


def _noise_level(sde: SDE, t: float) -> float:
    """s_t = sigma_t / alpha_t (inf where alpha_t = 0)."""
    alpha, sigma = sde.marginal(torch.tensor(t, dtype=torch.float64))
    return float(sigma / alpha) if bool(alpha > 0) else float("inf")


def logsnr(sde: SDE, n_steps: int) -> Tensor:
    """Uniform in log-SNR lambda_t = log(alpha_t / sigma_t) (DPM-Solver's 'logSNR')."""
    n = _check_steps(n_steps)
    lam_T = sde.log_snr(torch.tensor(sde.T, dtype=torch.float64))
    lam_0 = sde.log_snr(torch.tensor(sde.t_min, dtype=torch.float64))
    return _pin_ends(sde.t_from_log_snr(torch.linspace(float(lam_T), float(lam_0), n + 1, dtype=torch.float64)), sde)


SCHEDULES = {"uniform": uniform, "quadratic": quadratic, "karras": karras, "logsnr": logsnr}
