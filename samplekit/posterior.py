"""The exact posterior of a Gaussian mixture under a linear-Gaussian observation: a Gaussian mixture.

Prior p(x) = sum_k w_k N(mu_k, S_k); observation y = A x + tau n, n ~ N(0, I_m), tau >= 0.
Per component (Kalman update):
    G_k    = A S_k A^T + tau^2 I          (covariance of y under component k)
    K_k    = S_k A^T G_k^{-1}             (gain)
    m_k    = mu_k + K_k (y - A mu_k),     P_k = S_k - K_k A S_k,
    w'_k  ∝ w_k N(y; A mu_k, G_k).
p(x | y) = sum_k w'_k N(m_k, P_k).  With tau = 0, P_k is singular (the posterior lives on
{A x = y}); ``sample`` handles that exactly (eigendecomposition with the null directions at 0).
"""

from __future__ import annotations

import math

import torch

from samplekit.errors import InvalidArgumentError
from samplekit.targets import GaussianMixture, mixture_covariance

Tensor = torch.Tensor


class PosteriorMixture:
    """sum_k w_k N(m_k, P_k) with P_k positive semi-definite (exact samples, moments)."""

    def __init__(self, weights: Tensor, means: Tensor, covariances: Tensor) -> None:
        self.weights, self.means, self.covariances = weights, means, covariances
        self.K, self.d = means.shape
        evals, evecs = torch.linalg.eigh(covariances)
        self._factor = evecs * evals.clamp_min(0).sqrt()[:, None, :]  # P_k = F_k F_k^T

    def sample(self, n: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64) -> Tensor:
        labels = torch.multinomial(self.weights, int(n), replacement=True, generator=generator)
        z = torch.randn(int(n), self.d, generator=generator, dtype=torch.float64)
        return (self.means[labels] + torch.einsum("nij,nj->ni", self._factor[labels], z)).to(dtype)

    @property
    def mean(self) -> Tensor:
        return self.weights @ self.means

    @property
    def covariance(self) -> Tensor:
        return mixture_covariance(self.weights, self.means, self.covariances)

    def mixture(self) -> GaussianMixture:
        """As a GaussianMixture (needs P_k positive definite, i.e. observation noise > 0)."""
        return GaussianMixture(self.weights, self.means, self.covariances)

    def __repr__(self) -> str:
        return f"PosteriorMixture(K={self.K}, d={self.d})"


def linear_gaussian_posterior(prior: GaussianMixture, A, y, noise_std: float = 0.0) -> PosteriorMixture:
    """p(x | y) for y = A x + noise_std n under the Gaussian-mixture prior (x flattened to (d,))."""
    A = torch.as_tensor(A, dtype=torch.float64)
    y = torch.as_tensor(y, dtype=torch.float64).flatten()
    if A.ndim != 2 or A.shape[1] != prior.d:
        raise InvalidArgumentError(f"A has shape {tuple(A.shape)}; pass (m, {prior.d}) for this prior")
    if y.shape != (A.shape[0],):
        raise InvalidArgumentError(f"y has {y.numel()} entries for A with {A.shape[0]} rows")
    tau = float(noise_std)
    if not math.isfinite(tau) or tau < 0:
        raise InvalidArgumentError(f"noise_std={noise_std!r} must be a finite number >= 0")
    S = prior.covariance_matrices()  # (K, d, d)
    mu = prior.means
    m = A.shape[0]
    G = A @ S @ A.T + tau**2 * torch.eye(m, dtype=torch.float64)  # (K, m, m)
    resid = y[None] - mu @ A.T  # (K, m)
    if tau == 0:  # G may be singular when A has dependent rows: use the pseudo-inverse on its range
        G_inv = torch.linalg.pinv(G, hermitian=True)
        evals = torch.linalg.eigvalsh(G)
        keep = evals > 1e-12 * evals.max(dim=-1, keepdim=True).values
        logdet = torch.where(keep, evals.clamp_min(1e-300).log(), torch.zeros_like(evals)).sum(-1)
        rank = keep.sum(-1).to(torch.float64)
    else:
        G_inv = torch.linalg.inv(G)
        logdet = torch.linalg.slogdet(G)[1]
        rank = torch.full((prior.K,), float(m), dtype=torch.float64)
    gain = S @ A.T @ G_inv  # (K, d, m)
    means = mu + torch.einsum("kdm,km->kd", gain, resid)
    covs = S - gain @ A @ S
    covs = 0.5 * (covs + covs.transpose(1, 2))
    log_lik = -0.5 * (torch.einsum("km,kmn,kn->k", resid, G_inv, resid) + logdet + rank * math.log(2 * math.pi))
    log_w = torch.log(prior.weights) + log_lik
    return PosteriorMixture(torch.softmax(log_w, 0), means, covs)


def observation_posterior(prior: GaussianMixture, observation) -> PosteriorMixture:
    """The exact posterior for a ``samplekit.conditioning`` observation (dense A from ``observation.matrix()``)."""
    return linear_gaussian_posterior(prior, observation.matrix(), observation.y_vector(), observation.noise_std)
