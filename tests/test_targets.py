"""Gaussian-mixture targets: exact samples, log density and score of every noised marginal."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import samplekit as sk
from samplekit.targets import gmm16_full, gmm64_diag, ring2d

f64 = torch.float64


def random_mixture(seed: int, d: int, K: int, diagonal: bool) -> sk.GaussianMixture:
    g = torch.Generator().manual_seed(seed)
    means = 3 * torch.randn(K, d, generator=g, dtype=f64)
    if diagonal:
        covs = 0.05 + torch.rand(K, d, generator=g, dtype=f64)
    else:
        A = torch.randn(K, d, d, generator=g, dtype=f64)
        covs = A @ A.transpose(1, 2) / d + 0.05 * torch.eye(d, dtype=f64)
    return sk.GaussianMixture(torch.rand(K, generator=g, dtype=f64) + 0.1, means, covs)


def reference_log_prob(mix: sk.GaussianMixture, x, alpha, sigma):
    """log p_t by torch.distributions (Cholesky), independent of the eigen-decomposition in targets.py."""
    covs = alpha**2 * mix.covariance_matrices() + sigma**2 * torch.eye(mix.d, dtype=f64)
    comps = torch.distributions.MultivariateNormal(alpha * mix.means, covariance_matrix=covs)
    return torch.logsumexp(comps.log_prob(x[:, None, :]) + mix.weights.log(), dim=1)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 10**6),
    st.integers(1, 6),
    st.integers(1, 4),
    st.booleans(),
    st.floats(0.05, 1.0),
    st.floats(0.0, 2.0),
)
def test_log_prob_and_score_match_torch_distributions_and_autograd(seed, d, K, diagonal, alpha, sigma):
    mix = random_mixture(seed, d, K, diagonal)
    x = mix.noised(alpha, sigma).sample(32, torch.Generator().manual_seed(seed))
    lp = mix.noised_log_prob(x, alpha, sigma)
    assert torch.allclose(lp, reference_log_prob(mix, x, alpha, sigma), rtol=1e-9, atol=1e-9)
    xr = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(mix.noised_log_prob(xr, alpha, sigma).sum(), xr)
    assert torch.allclose(mix.noised_score(x, alpha, sigma), grad, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("make", [ring2d, gmm16_full, gmm64_diag])
def test_score_model_is_the_gradient_of_the_noised_log_density_under_each_sde(make):
    mix = make()
    for name in ["vp", "subvp", "ve", "ou", "edm"]:
        sde = sk.get_sde(name)
        model = mix.score_model(sde)
        ts = torch.linspace(sde.t_min, sde.T, 9, dtype=f64)
        alpha, sigma = sde.marginal(ts)
        x = alpha[:, None] * mix.sample(9, torch.Generator().manual_seed(1)) + sigma[:, None] * torch.randn(
            9, mix.d, dtype=f64, generator=torch.Generator().manual_seed(2)
        )
        xr = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(mix.noised_log_prob(xr, alpha, sigma).sum(), xr)
        assert torch.allclose(model(x, ts), grad, rtol=1e-7, atol=1e-7 * float(grad.abs().max())), name


def test_samples_have_the_exact_mean_and_covariance():
    mix = gmm16_full()
    n = 200_000
    x = mix.sample(n, torch.Generator().manual_seed(0))
    se = (mix.covariance.diagonal() / n).sqrt()
    assert ((x.mean(0) - mix.mean).abs() / se).max() < 5
    cov_err = (torch.cov(x.T) - mix.covariance).abs().max() / mix.covariance.abs().max()
    assert cov_err < 0.02


def test_labels_follow_the_weights():
    mix = ring2d()
    _, labels = mix.sample(100_000, torch.Generator().manual_seed(0), return_labels=True)
    freq = torch.bincount(labels, minlength=8).double() / 100_000
    assert (freq - mix.weights).abs().max() < 5 * math.sqrt(0.25 / 100_000)


def test_log_prob_normalises_in_two_dimensions():
    mix = sk.GaussianMixture([1.0, 2.0], [[-1.0, 0.0], [1.5, 0.5]], [[0.3, 0.6], [0.5, 0.2]])
    g = torch.linspace(-6, 6, 801, dtype=f64)
    xx, yy = torch.meshgrid(g, g, indexing="ij")
    dens = mix.log_prob(torch.stack([xx.flatten(), yy.flatten()], 1)).exp().reshape(801, 801)
    mass = torch.trapezoid(torch.trapezoid(dens, g, dim=1), g)
    assert abs(float(mass) - 1) < 1e-6


def test_stable_far_from_every_component():
    mix = gmm64_diag()
    x = torch.full((3, 64), 1e3, dtype=f64)
    assert torch.isfinite(mix.log_prob(x)).all() and torch.isfinite(mix.noised_score(x, 1.0, 1e-3)).all()


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(weights=[1.0], means=[0.0, 1.0], covariances=[[1.0, 1.0]]), "means has shape"),
        (dict(weights=[1.0, 1.0], means=[[0.0, 1.0]], covariances=[[1.0, 1.0]]), "one weight per component"),
        (dict(weights=[-1.0], means=[[0.0, 1.0]], covariances=[[1.0, 1.0]]), "positive"),
        (dict(weights=[1.0], means=[[0.0, 1.0]], covariances=[[[1.0, 2.0], [2.0, 1.0]]]), "positive definite"),
        (dict(weights=[1.0], means=[[0.0, 1.0]], covariances=[[1.0, 1.0, 1.0]]), "covariances has shape"),
    ],
)
def test_bad_mixture_parameters(bad, match):
    with pytest.raises(ValueError, match=match):
        sk.GaussianMixture(**bad)
