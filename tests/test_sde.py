"""SDEs: the marginal coefficients solve the moment ODEs; priors are the stated Gaussians."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import samplekit as sk

f64 = torch.float64


def sdes():
    """Hypothesis strategy over every SDE family and its parameters."""
    vp = st.builds(
        lambda lo, span: sk.VPSDE(beta_min=lo, beta_max=lo + span), st.floats(0.01, 2.0), st.floats(0.0, 30.0)
    )
    subvp = st.builds(
        lambda lo, span: sk.SubVPSDE(beta_min=lo, beta_max=lo + span), st.floats(0.01, 2.0), st.floats(0.0, 30.0)
    )
    ve = st.builds(
        lambda lo, ratio: sk.VESDE(sigma_min=lo, sigma_max=lo * ratio), st.floats(0.001, 0.5), st.floats(2.0, 1e4)
    )
    ou = st.builds(lambda beta, s: sk.OUSDE(beta=beta, sigma=s), st.floats(0.1, 3.0), st.floats(0.1, 3.0))
    edm = st.builds(lambda lo, hi: sk.EDMSDE(sigma_min=lo, sigma_max=hi), st.floats(0.001, 0.1), st.floats(1.0, 100.0))
    return st.one_of(vp, subvp, ve, ou, edm)


@settings(max_examples=200, deadline=None)
@given(sdes(), st.floats(0.02, 0.98))
def test_marginal_solves_the_moment_odes(sde, u):
    """d alpha/dt = a(t) alpha and d sigma^2/dt = 2 a(t) sigma^2 + g(t)^2 (central differences, float64)."""
    t = torch.tensor(sde.t_min + u * (sde.T - sde.t_min), dtype=f64)
    h = 1e-5 * min(float(t) - sde.t_min + 1e-3 * sde.T, sde.T - float(t) + 1e-3 * sde.T)
    (a_p, s_p), (a_m, s_m) = sde.marginal(t + h), sde.marginal(t - h)
    alpha, sigma = sde.marginal(t)
    a, g = sde.drift_coef(t), sde.diffusion(t)
    dalpha = (a_p - a_m) / (2 * h)
    dvar = (s_p**2 - s_m**2) / (2 * h)
    assert torch.allclose(dalpha, a * alpha, rtol=1e-5, atol=1e-9)
    rhs = 2 * a * sigma**2 + g**2
    assert torch.allclose(dvar, rhs, rtol=1e-5, atol=1e-9 * max(1.0, float(rhs.abs())))


@settings(max_examples=100, deadline=None)
@given(sdes(), st.floats(0.0, 1.0))
def test_t_from_log_snr_inverts_log_snr(sde, u):
    t = torch.tensor(sde.t_min + u * (sde.T - sde.t_min), dtype=f64)
    back = sde.t_from_log_snr(sde.log_snr(t))
    assert torch.allclose(back, t, rtol=1e-7, atol=1e-10)


@settings(max_examples=60, deadline=None)
@given(sdes(), st.floats(0.0, 1.0))
def test_generic_bisection_agrees_with_closed_form(sde, u):
    t = torch.tensor(sde.t_min + u * (sde.T - sde.t_min), dtype=f64)
    lam = sde.log_snr(t)
    assert torch.allclose(sk.SDE.t_from_log_snr(sde, lam), t, rtol=1e-7, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(sdes(), st.integers(1, 5))
def test_prior_log_prob_is_the_stated_gaussian(sde, d):
    x = torch.randn(7, d, dtype=f64, generator=torch.Generator().manual_seed(d)) * sde.prior_std
    scale = torch.tensor(sde.prior_std, dtype=f64)
    expected = torch.distributions.Normal(torch.zeros((), dtype=f64), scale).log_prob(x).sum(1)
    assert torch.allclose(sde.prior_log_prob(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["vp", "subvp", "ve", "ou", "edm"])
def test_prior_density_integrates_to_one_and_matches_samples(name):
    sde = sk.get_sde(name)
    s = sde.prior_std
    grid = torch.linspace(-10 * s, 10 * s, 200001, dtype=f64)[:, None]
    mass = torch.trapezoid(sde.prior_log_prob(grid).exp(), grid[:, 0])
    assert abs(float(mass) - 1.0) < 1e-8
    draws = sde.prior_sample((200000, 1), generator=torch.Generator().manual_seed(0), dtype=f64)
    assert abs(float(draws.std()) / s - 1.0) < 0.01  # 5 standard errors of a std estimate at n = 2e5


@pytest.mark.parametrize("name", ["vp", "subvp", "ve", "ou", "edm"])
def test_marginal_is_data_at_zero_noise_and_prior_like_at_T(name):
    sde = sk.get_sde(name)
    alpha, sigma = sde.marginal(torch.tensor(sde.t_min, dtype=f64))
    assert float(sigma) < 0.05 and abs(float(alpha) - 1) < 0.01
    alpha_T, sigma_T = sde.marginal(torch.tensor(sde.T, dtype=f64))
    # X_T of unit-scale data is within 1% (in std) of the prior
    assert abs(math.sqrt(float(alpha_T) ** 2 + float(sigma_T) ** 2) / sde.prior_std - 1) < 0.01


def test_time_outside_interval_is_rejected_with_the_interval():
    sde = sk.VPSDE()
    with pytest.raises(ValueError, match=r"outside \[t_min, T\] = \[0.001, 1.0\]"):
        sde.check_time(1.5)
    with pytest.raises(ValueError, match="non-finite"):
        sde.check_time(float("nan"))


@pytest.mark.parametrize("bad", [dict(beta_min=-1.0), dict(beta_min=2.0, beta_max=1.0), dict(T=0.0), dict(t_min=2.0)])
def test_bad_parameters_name_the_argument(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        sk.VPSDE(**bad)


def test_registry_builds_sdes_with_parameters():
    sde = sk.get_sde("ve", sigma_max=10.0)
    assert isinstance(sde, sk.VESDE) and sde.sigma_max == 10.0
    with pytest.raises(sk.UnknownComponentError, match="did you mean 've'"):
        sk.get_sde("vee")
