"""What every peer run shares: the exact targets, their reference sets, the metrics and the record.

A run gets x_T from its own sampler and returns samples; ``score`` compares them with an independent
exact reference set (same size) by sliced-W2 and the target log-density gap.  The noise floor is the
same metrics between two independent exact sets of that size.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import torch

from samplekit.bench.metrics import log_density_gap, mode_weight_tv, sliced_wasserstein
from samplekit.targets import gmm16_full, gmm32_illcond, gmm64_diag, grid2d_narrow, ring2d, spiky3d

TARGETS = {
    "ring2d": (ring2d, 4000),
    "gmm16_full": (gmm16_full, 2000),
    "gmm64_diag": (gmm64_diag, 2000),
    # the stress targets of issue 12: the low-noise end and the mode weights decide the score
    "grid2d_narrow": (grid2d_narrow, 4000),
    "spiky3d": (spiky3d, 2000),
    "gmm32_illcond": (gmm32_illcond, 2000),
}
BUDGETS = (5, 10, 20, 50)
SEEDS = (0, 1)
FLOOR_PAIRS = 5  # exact sets per seed for the noise floor (cheap: no sampler runs)
# errors that mean "this sampler cannot run this cell" rather than "it broke"
SKIP_REASONS = ("too small", "does not support", "would exceed max_nfe")


def exact_score(mixture):
    """grad_x log p(x) of alpha X + sigma eps: GaussianMixture.noised_score, with a fast path for one shared
    (alpha, sigma) and diagonal covariances (every sampler here calls the model with one noise level for the
    whole batch).  With C_k = diag(v_k), v_k = alpha^2 lam_k + sigma^2, the log-weights and the score are
    matrix products:  log N_k(x) = -(x^2 . 1/v_k - 2 x . m_k/v_k + m_k^2 . 1/v_k + sum log(2 pi v_k)) / 2,
    s(x) = sum_k r_k (a m_k - x) / v_k,  m_k = alpha mu_k  (the same law as GaussianMixture's per-component
    residuals, without the (batch, K, d) tensors that make the 64-D target 20x slower).  ``check`` compares
    the two on random inputs, so every library below gets the same exact model either way.
    """
    mu, lam, logw = mixture.means, mixture.evals, torch.log(mixture.weights)

    def score(x, alpha, sigma):
        a, s = torch.as_tensor(alpha, dtype=x.dtype), torch.as_tensor(sigma, dtype=x.dtype)
        if not mixture.diagonal or not (bool((a == a.flatten()[0]).all()) and bool((s == s.flatten()[0]).all())):
            return mixture.noised_score(x, alpha, sigma)
        a, s = a.flatten()[0], s.flatten()[0]
        iv = 1 / (a * a * lam + s * s)  # (K, d)
        m = a * mu
        logits = logw - 0.5 * (
            (x * x) @ iv.T
            - 2 * x @ (m * iv).T
            + (m * m * iv).sum(1)
            - torch.log(iv).sum(1)
            + mixture.d * math.log(2 * math.pi)
        )
        r = torch.softmax(logits, dim=1)
        return r @ (m * iv) - x * (r @ iv)

    return score


def check(mixture, score, n: int = 64) -> None:
    g = torch.Generator().manual_seed(0)
    for alpha, sigma in ((1.0, 0.002), (1.0, 0.3), (0.7, 0.7), (1.0, 80.0), (0.01, 0.9999)):
        x = alpha * mixture.sample(n, generator=g) + sigma * torch.randn(n, mixture.d, generator=g, dtype=torch.float64)
        fast, ref = score(x, alpha, sigma), mixture.noised_score(x, alpha, sigma)
        if not torch.allclose(fast, ref, rtol=1e-8, atol=1e-10 * float(ref.abs().max())):
            raise AssertionError(
                f"fast exact score differs from GaussianMixture.noised_score at alpha={alpha}, "
                f"sigma={sigma}: max |diff| {float((fast - ref).abs().max()):.3g}"
            )


class Problem:
    """One target at one seed: the mixture, the sample size and the exact reference set."""

    def __init__(self, name: str, seed: int, n: int | None = None) -> None:
        make, default_n = TARGETS[name]
        self.name, self.seed = name, seed
        self.mixture = make()
        self.score = exact_score(self.mixture)
        check(self.mixture, self.score)
        self.n = int(n or default_n)
        self.reference = self.mixture.sample(self.n, generator=torch.Generator().manual_seed(10_000 + seed))
        # one standard-normal draw shared by every library (x_T = prior_std * z): common random numbers, so
        # deterministic samplers of different libraries differ by their solver only, not by their x_T luck
        self.z = torch.randn(self.n, self.mixture.d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)

    def generator(self) -> torch.Generator:
        """A fresh generator for a stochastic sampler's own noise (seeded from the run's seed)."""
        return torch.Generator().manual_seed(30_000 + self.seed)

    def metrics(self, x: torch.Tensor) -> dict:
        return {
            "sw2": sliced_wasserstein(x, self.reference),
            "logp_gap": log_density_gap(x, self.reference, log_prob=self.mixture.log_prob),
            "mode_tv": mode_weight_tv(x, self.reference, mixture=self.mixture),
        }

    def floors(self, pairs: int = FLOOR_PAIRS) -> list[dict]:
        """The metrics of ``pairs`` independent exact sets against the reference: what a perfect sampler scores."""
        return [
            self.metrics(
                self.mixture.sample(self.n, generator=torch.Generator().manual_seed(20_000 + 100 * self.seed + j))
            )
            for j in range(pairs)
        ]


class Counter:
    """Wraps a model function and counts its calls (the NFE a peer really spent)."""

    def __init__(self, fn) -> None:
        self.fn, self.calls = fn, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)


@dataclass
class Record:
    library: str
    sampler: str
    setting: str
    target: str
    budget: int | None
    seed: int
    n: int
    nfe: int | None = None
    sw2: float | None = None
    logp_gap: float | None = None
    mode_tv: float | None = None
    seconds: float | None = None
    status: str = "ok"
    error: str = ""
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def timed_run(problem: Problem, record: Record, fn) -> Record:
    """Run fn() -> (samples, nfe); fill in the record (a failure is recorded, never raised)."""
    start = time.perf_counter()
    try:
        x, nfe = fn()
        record.seconds = time.perf_counter() - start
        record.nfe = int(nfe)
        if not torch.isfinite(x).all():
            raise FloatingPointError("samples hold NaN/Inf")
        if record.budget is not None and record.nfe > record.budget:
            raise RuntimeError(f"spent {record.nfe} network calls over the budget {record.budget}")
        record.__dict__.update(problem.metrics(x))
    except Exception as exc:  # noqa: BLE001 - a benchmark cell records its failure and the run goes on
        record.seconds = time.perf_counter() - start
        record.status = "skipped" if any(s in str(exc) for s in SKIP_REASONS) else "failed"
        record.error = f"{type(exc).__name__}: {exc}"[:300]
    return record
