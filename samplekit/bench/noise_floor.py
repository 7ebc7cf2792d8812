"""The exact-sample noise floor: a solver's samples against an exact target, at the precision that
a finite exact sample itself reaches.

    got   = mean_k SW2(samples, R_k),    floor = mean_k SW2(E_k, R_k),

R_k and E_k independent exact sample sets of the same size as ``samples`` (drawn from the Gaussian
mixture, ``samplekit.targets``).  A correct solver at a budget where it has converged has
got / floor near 1; the ratio shows a biased law however many samples are drawn.  This is the
measurement behind the every-solver test (tests/test_every_solver.py, ratio <= 1.5) and
``benchmarks/floor/run.py`` (the recorded table).
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from samplekit.bench.metrics import fixed_directions, sliced_wasserstein

__all__ = ["distance_and_floor", "floor_sdes", "generous_budget", "solver_families"]


def distance_and_floor(samples: torch.Tensor, mixture: Any, repeats: int = 6, seed: int = 123) -> tuple[float, float]:
    """Mean SW2 of ``samples`` to fresh exact reference sets, and the mean SW2 between two exact sets.

    One exact-vs-exact draw is a noisy floor (unequal mixture weights make component counts
    fluctuate), so both sides are averaged over ``repeats`` independent reference sets.  The reference
    sets, their sorted projections and the floor depend only on (mixture, size, seed, repeats), not on
    the samples: they are computed once and reused (sorting dominates the cost of SW2).
    """
    samples = samples.to(torch.float64).flatten(1)
    sorted_refs, floor = _references(mixture, samples.shape[0], repeats, seed)
    projected, _ = (samples @ fixed_directions(samples.shape[1], N_PROJECTIONS, 0)).sort(dim=0)
    got = [float(((projected - ref) ** 2).mean().sqrt()) for ref in sorted_refs]
    return sum(got) / repeats, floor


N_PROJECTIONS = 256  # sliced_wasserstein's default
_CACHE: dict[tuple, tuple[list[torch.Tensor], float]] = {}
_CACHE_SIZE = 6


def _references(mixture: Any, n: int, repeats: int, seed: int) -> tuple[list[torch.Tensor], float]:
    """The sorted projections of ``repeats`` exact reference sets R_k and the floor mean_k SW2(E_k, R_k),
    drawn in that order from one generator seeded with ``seed`` (cached by the mixture's parameters)."""
    key = (_fingerprint(mixture), n, repeats, seed)
    if key not in _CACHE:
        g = torch.Generator().manual_seed(seed)
        sorted_refs, floor = [], 0.0
        for _ in range(repeats):
            reference = mixture.sample(n, g).to(torch.float64).flatten(1)
            floor += sliced_wasserstein(mixture.sample(n, g), reference) / repeats
            dirs = fixed_directions(reference.shape[1], N_PROJECTIONS, 0)
            sorted_refs.append((reference @ dirs).sort(dim=0).values)
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = (sorted_refs, floor)
    return _CACHE[key]


def _fingerprint(mixture: Any) -> bytes:
    parts = [getattr(mixture, name) for name in ("weights", "means", "covariances")]
    return hashlib.sha1(b"".join(p.detach().to(torch.float64).cpu().numpy().tobytes() for p in parts)).digest()


def floor_sdes() -> dict[str, Any]:
    """The SDEs of the floor measurement: VP, VE and rectified flow (whose alpha_T = 0 start is the hard case)."""
    from samplekit.api import get_sde
    from samplekit.sde import VESDE, VPSDE

    return {"vp": VPSDE(), "ve": VESDE(), "rectified_flow": get_sde("rectified_flow")}


def solver_families(info: Any) -> list[str]:
    """The SDE families ("vp", "ve") a registered solver (its ``ComponentInfo``) declares it handles."""
    return list(info.info.get("sde_families") or ("vp", "ve"))


def generous_budget(info: Any) -> dict:
    """``sample()`` budget options at which every correct solver of its kind has converged on the ring:
    20000 calls at rtol = atol = 1e-6 (adaptive), 1000 calls (stochastic), 200 calls (deterministic)."""
    if info.info.get("adaptive"):
        return {"nfe": 20000, "rtol": 1e-6, "atol": 1e-6}
    return {"nfe": 1000 if info.info.get("stochastic") else 200}
