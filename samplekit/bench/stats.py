"""Intervals that rank solvers: per-sample means pooled over seeds (t intervals), bootstrap standard
errors for distances between sample sets, and groups of solvers tied within noise.

Per-sample statistics (a solver's distance to the reference ODE solution from the same x_T; log p of
each sample) are stored per cell as ``[mean, sd, n]`` and pooled over seeds exactly:
    mean = sum n_s m_s / N,   var = (sum (n_s - 1) sd_s^2 + sum n_s (m_s - mean)^2) / (N - 1),
with the 95% interval mean +- 1.96 sd / sqrt(N) (N is in the thousands, so t = z).  Set distances
(SW2, mode-weight TV) get a bootstrap standard error per cell (Efron & Tibshirani 1993, ch. 6:
resample the generated and the reference set with replacement, B times); over S seeds the value is
the mean of the seeds' values with se = sqrt(sum se_s^2) / S.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass

import numpy as np
import torch

Z95 = 1.959964


@dataclass(frozen=True)
class Estimate:
    """A value with its 95% interval [lo, hi]."""

    value: float
    lo: float
    hi: float

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2


def per_sample(values: torch.Tensor) -> list[float]:
    """[mean, sd, n] of per-sample values (the record format)."""
    v = values.detach().double().flatten()
    sd = float(v.std()) if v.numel() > 1 else 0.0
    return [float(v.mean()), sd, int(v.numel())]


def pool(stats: list) -> tuple[float, float, int]:
    """Pool [mean, sd, n] of several seeds into (mean, sd, N) of all samples together."""
    n = sum(s[2] for s in stats)
    mean = sum(s[0] * s[2] for s in stats) / n
    ss = sum((s[2] - 1) * s[1] ** 2 + s[2] * (s[0] - mean) ** 2 for s in stats)
    return mean, math.sqrt(ss / (n - 1)) if n > 1 else 0.0, n


def mean_interval(stats: list) -> Estimate:
    mean, sd, n = pool(stats)
    hw = Z95 * sd / math.sqrt(n)
    return Estimate(mean, mean - hw, mean + hw)


def abs_gap_interval(stats: list, expected: float) -> Estimate:
    """|E_q f - expected| from per-sample f: the interval of the mean shifted, then folded at zero."""
    e = mean_interval(stats)
    lo, hi = e.lo - expected, e.hi - expected
    value = abs(e.value - expected)
    if lo >= 0:
        return Estimate(value, lo, hi)
    if hi <= 0:
        return Estimate(value, -hi, -lo)
    return Estimate(value, 0.0, max(-lo, hi))


def seeds_interval(values: list[float], ses: list[float]) -> Estimate:
    """Mean over seeds of a set distance, se = sqrt(sum se_s^2) / S (independent seeds)."""
    s = len(values)
    value = sum(values) / s
    se = math.sqrt(sum(x * x for x in ses)) / s
    return Estimate(value, value - Z95 * se, value + Z95 * se)


def bootstrap_se(statistic, n: int, m: int, reps: int = 50, seed: int = 0) -> float:
    """Standard deviation of ``statistic(ix, iy)`` over ``reps`` resamplings with replacement of the
    n generated and m reference indices (fixed seed: the same resamples on every rerun)."""
    g = torch.Generator().manual_seed(seed)
    values = torch.tensor(
        [
            float(statistic(torch.randint(0, n, (n,), generator=g), torch.randint(0, m, (m,), generator=g)))
            for _ in range(reps)
        ],
        dtype=torch.float64,
    )
    return float(values.std())


BOOTSTRAP_DIRECTIONS = 32


def sw2_bootstrap_se(x: torch.Tensor, y: torch.Tensor, dirs: torch.Tensor, reps: int = 50, seed: int = 0) -> float:
    """Bootstrap se of SW2(x, y) over the first BOOTSTRAP_DIRECTIONS of the metric's fixed directions
    (a sort per resample is the cost; fewer directions average less, so this se errs on the wide side)."""
    dirs = dirs[:, :BOOTSTRAP_DIRECTIONS]
    px, py = x.flatten(1).double() @ dirs, y.flatten(1).double() @ dirs

    def sw2(ix, iy):
        a, _ = px[ix].sort(dim=0)
        b, _ = py[iy].sort(dim=0)
        if a.shape[0] != b.shape[0]:
            k = min(a.shape[0], b.shape[0])
            levels = (torch.arange(k, dtype=torch.float64) + 0.5) / k
            a, b = torch.quantile(a, levels, dim=0), torch.quantile(b, levels, dim=0)
        return ((a - b) ** 2).mean().sqrt()

    return bootstrap_se(sw2, px.shape[0], py.shape[0], reps, seed)


def tie_groups(items: list[tuple[str, Estimate]]) -> list[list[str]]:
    """Rank by value (lower is better) and group: a group starts at the best solver not yet grouped
    and takes every other ungrouped one whose interval reaches down to the leader's (tied within noise)."""
    left = sorted(items, key=lambda kv: kv[1].value)
    groups: list[list[str]] = []
    while left:
        lead = left[0][1]
        tied = [kv for kv in left if kv is left[0] or kv[1].lo <= lead.hi]
        groups.append([label for label, _ in tied])
        left = [kv for kv in left if all(kv is not t for t in tied)]
    return groups


def encode_per_sample(values: torch.Tensor) -> str:
    """Per-sample values for paired comparisons, compact: float16 of value / mean, base64 (2 bytes a sample;
    relative precision 1e-3, enough for a difference whose interval is wider than that)."""
    v = values.detach().double().flatten()
    scale = float(v.mean()) if float(v.mean()) > 0 else 1.0
    return base64.b64encode((v / scale).numpy().astype("<f2").tobytes()).decode("ascii")


def decode_per_sample(text: str, mean: float) -> np.ndarray:
    rel = np.frombuffer(base64.b64decode(text), dtype="<f2").astype(np.float64)
    scale = mean / rel.mean() if rel.size and rel.mean() > 0 else 1.0
    return rel * scale


def paired_difference(a: np.ndarray, b: np.ndarray) -> Estimate:
    """mean(a_i - b_i) with its 95% t interval, a and b errors of the same samples (same x_T)."""
    d = a - b
    hw = Z95 * float(d.std(ddof=1)) / math.sqrt(d.size) if d.size > 1 else 0.0
    return Estimate(float(d.mean()), float(d.mean()) - hw, float(d.mean()) + hw)


def paired_tie_groups(items: list[tuple[str, Estimate, np.ndarray | None]]) -> list[list[str]]:
    """Like ``tie_groups``, but a solver is tied with the group's leader when the 95% interval of their paired
    per-sample difference reaches zero (much sharper than overlapping intervals: the samples hard for one
    solver are hard for all).  Solvers without per-sample values fall back to overlapping intervals."""
    left = sorted(items, key=lambda kv: kv[1].value)
    groups: list[list[str]] = []
    while left:
        lead = left[0]

        def tied(kv, lead=lead) -> bool:
            if kv is lead:
                return True
            if lead[2] is not None and kv[2] is not None and kv[2].shape == lead[2].shape:
                return paired_difference(kv[2], lead[2]).lo <= 0
            return kv[1].lo <= lead[1].hi

        group = [kv for kv in left if tied(kv)]
        groups.append([label for label, _, _ in group])
        left = [kv for kv in left if all(kv is not g for g in group)]
    return groups


def ranks(items: list[tuple[str, Estimate]]) -> dict[str, int]:
    """label -> 1-based rank of its tie group."""
    return {label: r for r, group in enumerate(tie_groups(items), start=1) for label in group}
