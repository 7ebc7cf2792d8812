"""Shared helpers: a schedule built in the noise level s = sigma_t / alpha_t = exp(-lambda_t), mapped to model time."""

from __future__ import annotations

import math

import torch

from samplekit.checks import positive_int
from samplekit.errors import InvalidArgumentError
from samplekit.sde import SDE

Tensor = torch.Tensor


def steps(n_steps) -> int:
    return positive_int(n_steps, "n_steps")


def noise_range(sde: SDE) -> tuple[float, float]:
    """(s_min, s_max): the noise levels sigma/alpha at t_min and at T (s_max = inf where alpha_T = 0)."""
    lam = sde.log_snr(torch.tensor([sde.t_min, sde.T], dtype=torch.float64))
    return math.exp(-float(lam[0])), math.exp(-float(lam[1]))


def times_from_noise(sde: SDE, s: Tensor) -> Tensor:
    """Model times of the noise levels s (decreasing), ends pinned to T and t_min: t = sde.t_from_log_snr(-log s)."""
    ts = sde.t_from_log_snr(-torch.log(s.to(torch.float64))).to(torch.float64).clamp(sde.t_min, sde.T)
    ts[0], ts[-1] = sde.T, sde.t_min
    return ts


def finite_positive(value, name: str, hint: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise InvalidArgumentError(f"schedule option {name}={value!r} must be a positive finite number ({hint})")
    return float(value)
