"""Sample-quality metrics between generated samples x (n, ...) and reference samples y (m, ...)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

Tensor = torch.Tensor


def _flat64(x: Tensor, name: str) -> Tensor:
    if not isinstance(x, Tensor) or x.ndim < 2:
        raise ValueError(f"{name} must be a tensor of shape (n, ...) with one sample per row")
    x = x.detach().flatten(1).to(torch.float64)
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} holds NaN/Inf")
    return x


def fixed_directions(d: int, n_projections: int, seed: int, device=None) -> Tensor:
    """n_projections unit vectors in R^d drawn from a fixed seed (the same for every call)."""
    g = torch.Generator().manual_seed(int(seed))
    v = torch.randn(d, n_projections, generator=g, dtype=torch.float64)
    return (v / v.norm(dim=0, keepdim=True)).to(device)


def _matched_quantiles(px: Tensor, py: Tensor) -> tuple[Tensor, Tensor]:
    """Sorted projections at common quantile levels (exact sorting when the sizes agree)."""
    px, _ = px.sort(dim=0)
    py, _ = py.sort(dim=0)
    if px.shape[0] == py.shape[0]:
        return px, py
    m = min(px.shape[0], py.shape[0])
    levels = (torch.arange(m, dtype=torch.float64) + 0.5) / m
    return torch.quantile(px, levels, dim=0), torch.quantile(py, levels, dim=0)


def sliced_wasserstein(x: Tensor, y: Tensor, n_projections: int = 256, seed: int = 0) -> float:
    """SW2(x, y) = sqrt(mean_theta W2^2(theta^T x, theta^T y)) over fixed random directions theta."""
    x, y = _flat64(x, "samples"), _flat64(y, "reference")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"samples have dimension {x.shape[1]}, reference {y.shape[1]}")
    dirs = fixed_directions(x.shape[1], n_projections, seed)
    px, py = _matched_quantiles(x @ dirs, y @ dirs)
    return float(((px - py) ** 2).mean().sqrt())


def _pair(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    x, y = _flat64(x, "samples"), _flat64(y, "reference")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"samples have dimension {x.shape[1]}, reference {y.shape[1]}")
    return x, y


def _offdiag_mean(k: Tensor) -> Tensor:
    """Mean of a square kernel matrix without its diagonal (the U-statistic)."""
    n = k.shape[0]
    if n < 2:
        raise ValueError("an unbiased estimate needs at least 2 samples per set")
    return (k.sum() - k.diagonal().sum()) / (n * (n - 1))


def median_bandwidth(x: Tensor, y: Tensor, max_points: int = 1000) -> float:
    """The median heuristic: the median pairwise distance of the pooled set (its first max_points/2 of each)."""
    half = max_points // 2
    z = torch.cat([x[:half], y[:half]])
    d = torch.cdist(z, z)
    off = d[~torch.eye(z.shape[0], dtype=torch.bool)]
    return float(off.median())


def mmd_rbf(x: Tensor, y: Tensor, bandwidth: float | None = None) -> float:
    """Unbiased MMD^2 with the RBF kernel k(a, b) = exp(-|a - b|^2 / (2 h^2)), h the median heuristic.

    MMD^2 = E k(X, X') + E k(Y, Y') - 2 E k(X, Y), within-set terms without the diagonal, so the
    estimate of two sets from one law is zero on average (and may be slightly negative).
    """
    x, y = _pair(x, y)
    h = median_bandwidth(x, y) if bandwidth is None else float(bandwidth)
    if not h > 0:
        raise ValueError(f"bandwidth={h!r} must be positive (all points coincide? pass bandwidth=...)")
    gamma = 1.0 / (2.0 * h * h)

    def kernel(a: Tensor, b: Tensor) -> Tensor:
        return torch.cdist(a, b).pow_(2).mul_(-gamma).exp_()

    return float(_offdiag_mean(kernel(x, x)) + _offdiag_mean(kernel(y, y)) - 2.0 * kernel(x, y).mean())


def energy_distance(x: Tensor, y: Tensor) -> float:
    """Energy distance 2 E|X - Y| - E|X - X'| - E|Y - Y'| (Szekely), within-set terms unbiased."""
    x, y = _pair(x, y)
    return float(2.0 * torch.cdist(x, y).mean() - _offdiag_mean(torch.cdist(x, x)) - _offdiag_mean(torch.cdist(y, y)))


def mean_error(x: Tensor, y: Tensor) -> float:
    """|mean(x) - mean(y)|_2."""
    x, y = _pair(x, y)
    return float((x.mean(0) - y.mean(0)).norm())


def covariance_error(x: Tensor, y: Tensor) -> float:
    """Relative Frobenius error |Cov(x) - Cov(y)|_F / |Cov(y)|_F (sample covariances, n - 1)."""
    x, y = _pair(x, y)
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError("a covariance needs at least 2 samples per set")
    cx, cy = torch.cov(x.T).reshape(x.shape[1], -1), torch.cov(y.T).reshape(y.shape[1], -1)
    return float((cx - cy).norm() / cy.norm())


def log_density_gap(x: Tensor, y: Tensor, log_prob=None, expected: float | None = None) -> float:
    """|E_q log p - E_p log p| under the exact target density p (exact targets only): the mean of log p
    over the samples x against ``expected`` = E_p log p (the harness passes it from 100,000 exact
    samples), else against the mean over the reference set y.

    Over-sharpened samples score too high, spread-out ones too low; both show as a gap.
    """
    if log_prob is None:
        raise ValueError("log_density_gap needs log_prob=the target's exact log-density; it applies to exact targets")
    x, y = _pair(x, y)
    lx = log_prob(x)
    ly = torch.tensor(float(expected), dtype=torch.float64) if expected is not None else log_prob(y)
    if not (torch.isfinite(lx).all() and torch.isfinite(ly).all()):
        raise ValueError("log_prob returned NaN/Inf")
    return float((lx.mean() - ly.mean()).abs())


def mode_weight_tv(x: Tensor, y: Tensor, mixture=None) -> float:
    """Mode-weight total variation 1/2 sum_k |mean_i r_k(x_i) - w_k| (exact mixture targets only).

    r_k(x) = w_k N(x; m_k, C_k) / p(x) is the posterior probability of component k; under exact samples
    its mean is w_k exactly, so the TV of these soft weights sees a solver that drops or inflates modes
    (which SW2 of a many-mode target hardly does).  ``y`` is not used: the weights are exact.
    """
    if mixture is None:
        raise ValueError("mode_weight_tv needs mixture=the target's GaussianMixture; it applies to exact targets")
    x, _ = _pair(x, y)
    r = mixture.responsibilities(x)
    return float(0.5 * (r.mean(0) - mixture.weights.to(torch.float64)).abs().sum())


#: name -> (function, info): what the built-in plugin registers.  ``interval`` says how the harness gets
#: an interval for it (bootstrap_sw2, bootstrap_mode_tv, per_sample_logp; see samplekit.bench.stats).
METRICS: dict[str, tuple[Callable[..., float], dict[str, Any]]] = {
    "sliced_w2": (sliced_wasserstein, {"lower_is_better": True, "label": "SW2", "interval": "bootstrap_sw2"}),
    "mmd": (mmd_rbf, {"lower_is_better": True, "label": "MMD^2"}),
    "energy": (energy_distance, {"lower_is_better": True, "label": "energy"}),
    "mean_error": (mean_error, {"lower_is_better": True, "label": "mean err"}),
    "cov_error": (covariance_error, {"lower_is_better": True, "label": "cov rel err"}),
    "logp_gap": (
        log_density_gap,
        {"lower_is_better": True, "label": "logp gap", "needs_log_prob": True, "interval": "per_sample_logp"},
    ),
    "mode_tv": (
        mode_weight_tv,
        {"lower_is_better": True, "label": "mode TV", "needs_mixture": True, "interval": "bootstrap_mode_tv"},
    ),
}
