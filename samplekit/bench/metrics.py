"""Sample-quality metrics between generated samples x (n, ...) and reference samples y (m, ...)."""

from __future__ import annotations

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
