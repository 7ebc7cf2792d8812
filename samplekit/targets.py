"""Exact targets: Gaussian mixtures, whose noised marginals are Gaussian mixtures again.

p_0 = sum_k w_k N(mu_k, S_k).  Under X_t = alpha_t X_0 + sigma_t eps,
p_t = sum_k w_k N(alpha_t mu_k, C_k(t)),  C_k(t) = alpha_t^2 S_k + sigma_t^2 I,
so the score, density and samples of every p_t are exact.  With S_k = U_k diag(lam_k) U_k^T
(eigendecomposition, once, in float64), C_k(t) = U_k diag(alpha^2 lam_k + sigma^2) U_k^T: its
inverse and log-determinant are exact and batched over per-sample times at O(B K d^2).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from samplekit.checks import positive_int
from samplekit.errors import InvalidArgumentError
from samplekit.score import ScoreModel
from samplekit.sde import SDE, as_time

Tensor = torch.Tensor


def mixture_covariance(weights: Tensor, means: Tensor, covariances: Tensor) -> Tensor:
    """Cov[X] = sum_k w_k (S_k + mu_k mu_k^T) - m m^T, m = sum_k w_k mu_k, for X ~ sum_k w_k N(mu_k, S_k)
    (covariances as (K, d, d) matrices)."""
    m = weights @ means
    second = torch.einsum("k,kij->ij", weights, covariances) + torch.einsum("k,ki,kj->ij", weights, means, means)
    return second - torch.outer(m, m)


class GaussianMixture:
    """sum_k w_k N(mu_k, S_k), with S_k full (K, d, d) or diagonal (K, d)."""

    def __init__(self, weights, means, covariances) -> None:
        w = torch.as_tensor(weights, dtype=torch.float64).flatten()
        mu = torch.as_tensor(means, dtype=torch.float64)
        cov = torch.as_tensor(covariances, dtype=torch.float64)
        if mu.ndim != 2:
            raise InvalidArgumentError(f"means has shape {tuple(mu.shape)}; pass (K, d): one mean per component")
        K, d = mu.shape
        if w.shape != (K,):
            raise InvalidArgumentError(f"weights has {w.numel()} entries for {K} means; pass one weight per component")
        if not torch.isfinite(w).all() or (w <= 0).any():
            raise InvalidArgumentError("weights must be positive and finite")
        if not torch.isfinite(mu).all() or not torch.isfinite(cov).all():
            raise InvalidArgumentError("means and covariances must be finite")
        self.diagonal = cov.shape == (K, d)
        if self.diagonal:
            if (cov <= 0).any():
                raise InvalidArgumentError("diagonal covariances must be positive")
            evals, evecs = cov, None
        elif cov.shape == (K, d, d):
            if not torch.allclose(cov, cov.transpose(1, 2), atol=1e-10):
                raise InvalidArgumentError("covariances must be symmetric")
            evals, evecs = torch.linalg.eigh(cov)
            if (evals <= 0).any():
                raise InvalidArgumentError("covariances must be positive definite")
        else:
            raise InvalidArgumentError(
                f"covariances has shape {tuple(cov.shape)}; pass (K, d, d) full or (K, d) diagonal"
            )
        self.weights = w / w.sum()
        self.means = mu
        self.covariances = cov
        self.evals = evals
        self.evecs: Any = evecs  # (K, d, d) eigenvectors of full covariances; None (never read) when diagonal
        self.K, self.d = K, d

    # --- moments and pieces -------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int]:
        return (self.d,)

    def covariance_matrices(self) -> Tensor:
        return torch.diag_embed(self.covariances) if self.diagonal else self.covariances

    @property
    def mean(self) -> Tensor:
        return self.weights @ self.means

    @property
    def covariance(self) -> Tensor:
        return mixture_covariance(self.weights, self.means, self.covariance_matrices())

    def component(self, k: int) -> GaussianMixture:
        return GaussianMixture(self.weights[k : k + 1] * 0 + 1, self.means[k : k + 1], self.covariances[k : k + 1])

    def noised(self, alpha: float, sigma: float) -> GaussianMixture:
        """The law of alpha X + sigma eps."""
        alpha, sigma = float(alpha), float(sigma)
        if self.diagonal:
            cov = alpha**2 * self.covariances + sigma**2
        else:
            cov = alpha**2 * self.covariances + sigma**2 * torch.eye(self.d, dtype=torch.float64)
        return GaussianMixture(self.weights, alpha * self.means, cov)

    # --- sampling ---------------------------------------------------------------------------
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
        return_labels: bool = False,
    ):
        """n exact samples (and their component labels)."""
        n = positive_int(n, "n", "a positive number of samples")
        labels = torch.multinomial(self.weights, int(n), replacement=True, generator=generator)
        z = torch.randn(int(n), self.d, generator=generator, dtype=torch.float64)
        scaled = z * self.evals[labels].sqrt()
        if not self.diagonal:
            scaled = torch.einsum("nij,nj->ni", self.evecs[labels], scaled)
        x = (self.means[labels] + scaled).to(dtype)
        return (x, labels) if return_labels else x

    # --- densities and scores ---------------------------------------------------------------
    def _terms(self, x: Tensor, alpha, sigma) -> tuple[Tensor, Tensor, Tensor]:
        """log w_k N(x; alpha mu_k, C_k) (B, K), the whitened residual z (B, K, d), variances (B, K, d)."""
        if x.ndim != 2 or x.shape[1] != self.d:
            raise InvalidArgumentError(f"x has shape {tuple(x.shape)}; this mixture takes (batch, {self.d})")
        dt: dict[str, Any] = dict(dtype=x.dtype, device=x.device)
        alpha = as_time(alpha, x).reshape(-1, 1, 1)
        sigma = as_time(sigma, x).reshape(-1, 1, 1)
        means, evals = self.means.to(**dt), self.evals.to(**dt)
        resid = x[:, None, :] - alpha * means[None]  # (B, K, d)
        if not self.diagonal:
            resid = torch.einsum("kji,bkj->bki", self.evecs.to(**dt), resid)
        var = alpha * alpha * evals[None] + sigma * sigma  # (B, K, d)
        log_norm = -0.5 * ((resid * resid / var) + torch.log(var)).sum(-1) - 0.5 * self.d * math.log(2 * math.pi)
        return torch.log(self.weights.to(**dt))[None] + log_norm, resid, var

    def noised_log_prob(self, x: Tensor, alpha, sigma) -> Tensor:
        """log p_t(x) for the law of alpha X + sigma eps (alpha, sigma scalar or per sample)."""
        log_joint, _, _ = self._terms(x, alpha, sigma)
        return torch.logsumexp(log_joint, dim=1)

    def log_prob(self, x: Tensor) -> Tensor:
        return self.noised_log_prob(x, 1.0, 0.0)

    def log_responsibilities(self, x: Tensor, alpha=1.0, sigma=0.0) -> Tensor:
        """log p_t(k | x) for the law of alpha X + sigma eps, shape (B, K) (differentiable in x)."""
        log_joint, _, _ = self._terms(x, alpha, sigma)
        return torch.log_softmax(log_joint, dim=1)

    def responsibilities(self, x: Tensor, alpha=1.0, sigma=0.0) -> Tensor:
        """p_t(k | x), shape (B, K)."""
        return self.log_responsibilities(x, alpha, sigma).exp()

    def noised_score(self, x: Tensor, alpha, sigma) -> Tensor:
        """grad_x log p_t(x) = sum_k r_k(x) (-C_k^{-1} (x - alpha mu_k))."""
        log_joint, resid, var = self._terms(x, alpha, sigma)
        resp = torch.softmax(log_joint, dim=1)
        g = -resid / var
        if not self.diagonal:
            g = torch.einsum("kij,bkj->bki", self.evecs.to(dtype=x.dtype, device=x.device), g)
        return torch.einsum("bk,bki->bi", resp, g)

    def noised_denoiser(self, x: Tensor, alpha, sigma) -> Tensor:
        """E[X_0 | alpha X_0 + sigma eps = x] = sum_k r_k(x) (mu_k + alpha S_k C_k^{-1} (x - alpha mu_k));
        finite at alpha = 0 (there it is the mixture mean)."""
        log_joint, resid, var = self._terms(x, alpha, sigma)
        resp = torch.softmax(log_joint, dim=1)
        dt: dict[str, Any] = dict(dtype=x.dtype, device=x.device)
        a = as_time(alpha, x).reshape(-1, 1, 1)
        shrink = a * self.evals.to(**dt)[None] * resid / var  # alpha S C^{-1} (x - alpha mu), eigenbasis
        if not self.diagonal:
            shrink = torch.einsum("kij,bkj->bki", self.evecs.to(**dt), shrink)
        return torch.einsum("bk,bki->bi", resp, self.means.to(**dt)[None] + shrink)

    def score_model(self, sde: SDE) -> ScoreModel:
        """The exact score of p_t under ``sde``, for every t.  Where alpha_T = 0 (rectified flow) the model
        is the exact denoiser E[X_0 | X_t = x] instead, which stays finite at t = T (the score form would
        need x0 = (x + sigma^2 s) / alpha = 0 / 0 there); both are exact."""
        if sde.alpha_T_is_zero:

            def exact_denoiser(x: Tensor, t: Tensor) -> Tensor:
                alpha, sigma = sde.marginal(t)
                return self.noised_denoiser(x, alpha, sigma)

            return ScoreModel.from_denoiser(exact_denoiser, sde, (self.d,), name="exact_denoiser")

        def exact_score(x: Tensor, t: Tensor) -> Tensor:
            alpha, sigma = sde.marginal(t)
            return self.noised_score(x, alpha, sigma)

        return ScoreModel.from_score(exact_score, sde, (self.d,), name="exact_score")

    def __repr__(self) -> str:
        kind = "diagonal" if self.diagonal else "full"
        return f"GaussianMixture(K={self.K}, d={self.d}, {kind})"


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def ring2d() -> GaussianMixture:
    """The 2-D benchmark ring: 8 components of unequal weight and width on a circle of radius 4."""
    weights = torch.tensor([1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0])
    angles = torch.arange(8, dtype=torch.float64) * (math.pi / 4)
    means = 4.0 * torch.stack([angles.cos(), angles.sin()], dim=1)
    stds = torch.tensor([0.15, 0.3, 0.2, 0.4, 0.25, 0.15, 0.35, 0.2], dtype=torch.float64)
    return GaussianMixture(weights, means, (stds**2)[:, None].expand(8, 2).clone())


def gmm16_full(seed: int = 16) -> GaussianMixture:
    """A 16-D mixture of 5 full-covariance Gaussians (fixed seed): S_k = A_k A_k^T / d + 0.05 I."""
    g, d, K = _seeded(seed), 16, 5
    means = 3.0 * torch.randn(K, d, generator=g, dtype=torch.float64)
    A = torch.randn(K, d, d, generator=g, dtype=torch.float64)
    covs = A @ A.transpose(1, 2) / d + 0.05 * torch.eye(d, dtype=torch.float64)
    weights = torch.rand(K, generator=g, dtype=torch.float64) + 0.5
    return GaussianMixture(weights, means, covs)


def gmm64_diag(seed: int = 64) -> GaussianMixture:
    """A 64-D mixture of 6 diagonal Gaussians (fixed seed), variances in [0.02, 1]."""
    g, d, K = _seeded(seed), 64, 6
    means = 2.0 * torch.randn(K, d, generator=g, dtype=torch.float64)
    variances = 0.02 + 0.98 * torch.rand(K, d, generator=g, dtype=torch.float64)
    weights = torch.rand(K, generator=g, dtype=torch.float64) + 0.5
    return GaussianMixture(weights, means, variances)


# --- stress targets: the low-noise end and the mode weights decide the score -----------------------------
def grid2d_narrow() -> GaussianMixture:
    """A 2-D 5x5 grid (spacing 2) of narrow components (std 0.05); four of them light (weight 0.05 vs 1)."""
    xs = torch.arange(-2, 3, dtype=torch.float64) * 2.0
    means = torch.cartesian_prod(xs, xs)
    weights = torch.ones(25, dtype=torch.float64)
    weights[[0, 6, 18, 24]] = 0.05
    return GaussianMixture(weights, means, torch.full((25, 2), 0.05**2, dtype=torch.float64))


def spiky3d(seed: int = 3) -> GaussianMixture:
    """A 3-D mixture (fixed seed): three components of std 0.01 hold 90% of the mass, three broad ones
    (std 0.3-0.6) the rest: only the last, low-noise steps resolve the heavy ones."""
    g = _seeded(seed)
    means = 2.0 * torch.randn(6, 3, generator=g, dtype=torch.float64)
    stds = torch.tensor([0.01, 0.01, 0.01, 0.3, 0.45, 0.6], dtype=torch.float64)
    weights = torch.tensor([0.3, 0.3, 0.3, 0.04, 0.03, 0.03], dtype=torch.float64)
    return GaussianMixture(weights, means, (stds**2)[:, None].expand(6, 3).clone())


def gmm32_illcond(seed: int = 32) -> GaussianMixture:
    """A 32-D mixture of 4 full-covariance Gaussians (fixed seed) with eigenvalues log-spaced over 4
    decades, 1e-4 to 1, in random orthonormal bases: S_k = U_k diag(lam) U_k^T."""
    g, d, K = _seeded(seed), 32, 4
    means = 1.5 * torch.randn(K, d, generator=g, dtype=torch.float64)
    lam = torch.logspace(-4, 0, d, dtype=torch.float64)
    U, _ = torch.linalg.qr(torch.randn(K, d, d, generator=g, dtype=torch.float64))
    covs = U @ torch.diag_embed(lam.expand(K, d)) @ U.transpose(1, 2)
    covs = (covs + covs.transpose(1, 2)) / 2
    weights = torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=torch.float64)
    return GaussianMixture(weights, means, covs)


class ExactTarget:
    """A benchmark target with an exact answer: a Gaussian mixture under any SDE.

    ``model(sde)`` is the exact score model, ``reference(n, seed)`` exact samples,
    ``log_prob`` the exact target log-density.
    """

    exact = True

    def __init__(self, name: str, mixture: GaussianMixture) -> None:
        self.name = name
        self.mixture = mixture
        self.shape = mixture.shape

    def model(self, sde: SDE) -> ScoreModel:
        return self.mixture.score_model(sde)

    def reference(self, n: int, seed: int = 0) -> Tensor:
        return self.mixture.sample(n, generator=_seeded(seed))

    def log_prob(self, x: Tensor) -> Tensor:
        return self.mixture.log_prob(x)

    def __repr__(self) -> str:
        return f"ExactTarget({self.name!r}, {self.mixture!r})"


EXACT_TARGETS = {
    "ring2d": ring2d,
    "gmm16_full": gmm16_full,
    "gmm64_diag": gmm64_diag,
    "grid2d_narrow": grid2d_narrow,
    "spiky3d": spiky3d,
    "gmm32_illcond": gmm32_illcond,
}
