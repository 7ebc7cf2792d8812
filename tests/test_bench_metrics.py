"""The benchmark metrics against closed-form answers (Gaussians, point masses, exact scalings)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import samplekit as sk
from samplekit.bench import metrics
from samplekit.targets import GaussianMixture

f64 = dict(dtype=torch.float64)


def gaussian(n, mean, std, seed):
    g = torch.Generator().manual_seed(seed)
    mean = torch.as_tensor(mean, **f64)
    return mean + std * torch.randn(n, mean.numel(), generator=g, **f64)


def normal_quantiles(n):
    """The n midpoint quantiles of N(0, 1): a deterministic 'sample' of it."""
    levels = (torch.arange(n, **f64) + 0.5) / n
    return math.sqrt(2.0) * torch.erfinv(2 * levels - 1)


@settings(max_examples=40, deadline=None)
@given(m1=st.floats(-3, 3), m2=st.floats(-3, 3), s1=st.floats(0.1, 3), s2=st.floats(0.1, 3))
def test_sw2_in_one_dimension_is_the_quantile_w2(m1, m2, s1, s2):
    # in 1-D every direction is +-1, so SW2 is W2 between the two sorted sets:
    # W2^2 = mean_i ((m1 - m2) + (s1 - s2) z_i)^2 for the common quantiles z_i.
    z = normal_quantiles(400)
    x, y = (m1 + s1 * z)[:, None], (m2 + s2 * z)[:, None]
    expected = ((m1 - m2) + (s1 - s2) * z).pow(2).mean().sqrt()
    assert metrics.sliced_wasserstein(x, y) == pytest.approx(float(expected), rel=1e-9, abs=1e-12)


def test_sw2_between_isotropic_gaussians_matches_the_projected_closed_form():
    # theta^T X ~ N(theta^T m1, s1^2), theta^T Y ~ N(theta^T m2, s2^2), W2^2 = (theta^T dm)^2 + (s1 - s2)^2,
    # averaged over the metric's own fixed directions.
    m1, m2, s1, s2 = [1.0, -2.0, 0.5], [0.0, 1.0, 0.5], 1.0, 2.0
    x, y = gaussian(40_000, m1, s1, 0), gaussian(40_000, m2, s2, 1)
    dirs = metrics.fixed_directions(3, 256, 0)
    dm = torch.tensor(m1, **f64) - torch.tensor(m2, **f64)
    expected = math.sqrt(float(((dm @ dirs) ** 2).mean()) + (s1 - s2) ** 2)
    assert metrics.sliced_wasserstein(x, y) == pytest.approx(expected, rel=0.02)


def rbf_expectation(dm2, var, h, d):
    """E exp(-|Z|^2 / (2 h^2)) for Z ~ N(dm, var I_d) with |dm|^2 = dm2."""
    return (h * h / (h * h + var)) ** (d / 2) * math.exp(-dm2 / (2 * (h * h + var)))


def test_mmd_between_gaussians_matches_the_closed_form():
    d, h, s1, s2 = 2, 1.5, 1.0, 0.7
    m1, m2 = [0.0, 0.0], [1.0, 0.5]
    x, y = gaussian(3000, m1, s1, 2), gaussian(3000, m2, s2, 3)
    dm2 = 1.0**2 + 0.5**2
    expected = (
        rbf_expectation(0.0, 2 * s1**2, h, d)
        + rbf_expectation(0.0, 2 * s2**2, h, d)
        - 2 * rbf_expectation(dm2, s1**2 + s2**2, h, d)
    )
    assert metrics.mmd_rbf(x, y, bandwidth=h) == pytest.approx(expected, abs=0.02)  # ~3.5 std of the estimate
    assert expected > 0.1  # the case is not trivially near zero


def test_mmd_of_identical_and_of_equal_laws_is_near_zero():
    x = gaussian(1000, [0.0, 0.0, 0.0], 1.0, 4)
    n = x.shape[0]
    # unbiased: MMD^2(x, x) = 2/n (mean off-diagonal kernel - 1), so |.| <= 2/n exactly
    assert abs(metrics.mmd_rbf(x, x)) <= 2.0 / n
    same_law = metrics.mmd_rbf(x, gaussian(1000, [0.0, 0.0, 0.0], 1.0, 5))
    shifted = metrics.mmd_rbf(x, gaussian(1000, [0.5, 0.0, 0.0], 1.0, 5))
    assert abs(same_law) < 0.005 < shifted


def expected_abs(m, var):
    """E|Z| for Z ~ N(m, var)."""
    s = math.sqrt(var)
    return s * math.sqrt(2 / math.pi) * math.exp(-m * m / (2 * var)) + m * math.erf(m / (s * math.sqrt(2)))


def test_energy_distance_known_cases():
    # point masses at 0 and at c: 2|c| - 0 - 0
    zeros, c = torch.zeros(50, 1, **f64), 3.0
    assert metrics.energy_distance(zeros, zeros + c) == pytest.approx(2 * c, rel=1e-12)
    # 1-D Gaussians: 2 E|X - Y| - E|X - X'| - E|Y - Y'| in closed form, on deterministic quantile
    # 'samples' (the discretisation error is O(1e-3) at n = 2000; a random sample's spread is ~0.03)
    s1, s2, dm = 1.0, 2.0, 1.5
    z = normal_quantiles(2000)[:, None]
    x, y = s1 * z, dm + s2 * z
    expected = 2 * expected_abs(dm, s1**2 + s2**2) - expected_abs(0, 2 * s1**2) - expected_abs(0, 2 * s2**2)
    assert metrics.energy_distance(x, y) == pytest.approx(expected, abs=5e-3)
    assert metrics.energy_distance(x, y + 0.1) != pytest.approx(expected, abs=5e-3)
    # identical sets: -2/n times the mean off-diagonal distance (U-statistics), i.e. near zero
    assert abs(metrics.energy_distance(x, x)) < 4 * s1 * 2 / x.shape[0]


@settings(max_examples=30, deadline=None)
@given(shift=st.lists(st.floats(-5, 5), min_size=3, max_size=3), scale=st.floats(0.2, 3.0))
def test_mean_and_covariance_errors_are_exact_for_shifts_and_scalings(shift, scale):
    x = gaussian(300, [0.0, 0.0, 0.0], 1.0, 8)
    c = torch.tensor(shift, **f64)
    assert metrics.mean_error(x + c, x) == pytest.approx(float(c.norm()), abs=1e-9)
    assert metrics.covariance_error(x + c, x) == pytest.approx(0.0, abs=1e-9)
    # Cov(a x) = a^2 Cov(x): relative Frobenius error |a^2 - 1|
    assert metrics.covariance_error(scale * x, x) == pytest.approx(abs(scale**2 - 1), rel=1e-9, abs=1e-12)


def test_log_density_gap_of_a_widened_gaussian():
    # p = N(0, I_d); X ~ N(0, s^2 I): E log p(X) = -d/2 log(2 pi) - d s^2 / 2, so the gap is d |s^2 - 1| / 2
    d, s = 4, 1.3
    p = GaussianMixture([1.0], torch.zeros(1, d, **f64), torch.ones(1, d, **f64))
    x, y = gaussian(20_000, [0.0] * d, s, 9), gaussian(20_000, [0.0] * d, 1.0, 10)
    assert metrics.log_density_gap(x, y, log_prob=p.log_prob) == pytest.approx(d * (s * s - 1) / 2, rel=0.03)
    with pytest.raises(ValueError, match="log_prob"):
        metrics.log_density_gap(x, y)


@pytest.mark.parametrize("name", [c.name for c in sk.available("metric")])
def test_every_registered_metric_declares_its_direction_and_checks_its_input(name):
    info = sk.available("metric")[[c.name for c in sk.available("metric")].index(name)]
    assert info.info["lower_is_better"] is True
    fn = sk.get_metric(name)
    # a metric for one kind of data declares it (sample_shape); the generic ones get 2-D points
    shape = tuple(info.info.get("sample_shape", (2,)))
    x = gaussian(64, [0.0] * math.prod(shape), 1.0, 11).reshape(64, *shape)
    kw = (
        {"log_prob": GaussianMixture([1.0], torch.zeros(1, 2), torch.ones(1, 2)).log_prob}
        if info.info.get("needs_log_prob")
        else {}
    )
    if info.info.get("needs_mixture"):
        kw["mixture"] = GaussianMixture([1.0, 2.0], torch.tensor([[0.0, 0.0], [3.0, 0.0]]), torch.ones(2, 2))
    assert math.isfinite(fn(x, x + 1.0, **kw))
    with pytest.raises(ValueError, match="dimension"):
        fn(x, torch.zeros(64, 3, **f64), **kw)
    with pytest.raises(ValueError, match="NaN"):
        fn(x * float("nan"), x, **kw)
