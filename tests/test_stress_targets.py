"""The three stress targets (issue 12): registered as exact targets, built as described, exact score =
autograd of the exact noised log-density, exact samples with the mixture's moments and weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib
import torch

import samplekit as sk
from samplekit.bench.metrics import mode_weight_tv

STRESS = ("grid2d_narrow", "spiky3d", "gmm32_illcond")


@pytest.mark.parametrize("name", STRESS)
def test_registered_exact_and_in_the_default_suite(name):
    info = {i.name: i for i in sk.available("target")}[name]
    assert info.plugin == "samplekit_builtin" and info.summary
    suite = tomllib.loads((Path(__file__).parents[1] / "benchmarks/suites/default.toml").read_text())
    assert name in suite["targets"]


def test_shapes_of_the_stress():
    grid = sk.get_target("grid2d_narrow").mixture
    assert grid.K == 25 and grid.d == 2 and torch.allclose(grid.evals.sqrt(), torch.tensor(0.05, dtype=torch.float64))
    w = grid.weights
    assert int((w < 0.2 * w.max()).sum()) == 4 and torch.allclose(
        w.min() / w.max(), torch.tensor(0.05, dtype=torch.float64)
    )
    spiky = sk.get_target("spiky3d").mixture
    narrow = spiky.evals.max(1).values.sqrt() <= 0.01 + 1e-12
    assert float(spiky.weights[narrow].sum()) >= 0.9 - 1e-12
    ill = sk.get_target("gmm32_illcond").mixture
    assert ill.d == 32 and not ill.diagonal
    for k in range(ill.K):
        lam = torch.linalg.eigvalsh(ill.covariances[k])
        assert float(lam.max() / lam.min()) == pytest.approx(1e4, rel=1e-6)


@pytest.mark.parametrize("name", STRESS)
@pytest.mark.parametrize("alpha, sigma", [(1.0, 0.002), (0.99, 0.05), (0.6, 0.8), (0.01, 1.0)])
def test_exact_score_is_the_gradient_of_the_exact_log_density(name, alpha, sigma):
    m = sk.get_target(name).mixture
    g = torch.Generator().manual_seed(1)
    x = alpha * m.sample(16, generator=g) + sigma * torch.randn(16, m.d, generator=g, dtype=torch.float64)
    xr = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(m.noised_log_prob(xr, alpha, sigma).sum(), xr)
    torch.testing.assert_close(m.noised_score(x, alpha, sigma), grad, rtol=1e-7, atol=1e-7 * float(grad.abs().max()))


@pytest.mark.parametrize("name", STRESS)
def test_exact_samples_match_moments_and_mode_weights(name):
    t = sk.get_target(name)
    m = t.mixture
    x = t.reference(20000, seed=3)
    n = x.shape[0]
    se = (m.covariance.diagonal() / n).sqrt()
    assert bool(((x.mean(0) - m.mean).abs() <= 5 * se + 1e-12).all())
    cov = torch.cov(x.T)
    scale = m.covariance.diagonal().sqrt()
    assert float(((cov - m.covariance) / (scale[:, None] * scale[None, :])).abs().max()) < 0.1
    assert mode_weight_tv(x, x, mixture=m) < 0.02
    # dropping the samples of the heaviest component shows up as about its weight
    k = int(m.weights.argmax())
    keep = m.responsibilities(x).argmax(1) != k
    assert mode_weight_tv(x[keep], x[keep], mixture=m) == pytest.approx(float(m.weights[k]), rel=0.2)
