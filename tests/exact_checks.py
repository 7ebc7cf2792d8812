"""Shared exact-answer checks for solver tests: SW2 to exact samples against the exact-vs-exact floor
(``samplekit.bench.noise_floor``) and the fitted convergence order."""

from __future__ import annotations

import math

import torch

from samplekit.bench.noise_floor import distance_and_floor  # noqa: F401  (the tests import it from here)


def fitted_slope(steps, errors) -> float:
    """The convergence order -d log(error) / d log(steps), a least-squares fit in log-log."""
    logs = torch.tensor([[math.log(n), math.log(e)] for n, e in zip(steps, errors)], dtype=torch.float64)
    return float(-torch.cov(logs.T)[0, 1] / logs[:, 0].var())
