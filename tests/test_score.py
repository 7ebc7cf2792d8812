"""Score models: parametrisation round trips are the identity; calls are counted; bad input is refused."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import samplekit as sk
from samplekit.score import PARAMETRIZATIONS, from_eps_x0, to_eps_x0, to_score
from test_sde import sdes

f64 = torch.float64
MIXTURE = sk.GaussianMixture(
    [0.3, 0.7], [[-2.0, 0.5], [1.5, -1.0]], [[[1.0, 0.3], [0.3, 0.5]], [[0.2, 0.0], [0.0, 0.8]]]
)


def from_score(parametrization, score, x, alpha, sigma, d_alpha=None, d_sigma=None):
    """The network output in ``parametrization`` that encodes ``score``: through its (eps, x0)."""
    eps, x0 = to_eps_x0("score", score, x, alpha, sigma)
    return from_eps_x0(parametrization, eps, x0, alpha, sigma, d_alpha, d_sigma)


def as_network(parametrization, sde):
    """The exact mixture score re-expressed as a network in ``parametrization``."""

    def net(x, t):
        alpha, sigma = (c[:, None] for c in sde.marginal(t))
        d_alpha, d_sigma = (c[:, None] for c in sde.marginal_derivative(t))
        return from_score(
            parametrization, MIXTURE.noised_score(x, alpha[:, 0], sigma[:, 0]), x, alpha, sigma, d_alpha, d_sigma
        )

    return net


@settings(max_examples=150, deadline=None)
@given(sdes(), st.sampled_from(PARAMETRIZATIONS), st.floats(0.0, 1.0), st.integers(0, 2**16))
def test_round_trip_through_each_parametrisation_is_the_identity(sde, parametrization, u, seed):
    t = sde.t_min + u * (sde.T - sde.t_min)
    alpha, sigma = sde.marginal(torch.tensor(t, dtype=f64))
    x = alpha * MIXTURE.sample(16, torch.Generator().manual_seed(seed)) + sigma * torch.randn(
        16, 2, dtype=f64, generator=torch.Generator().manual_seed(seed + 1)
    )
    exact = MIXTURE.noised_score(x, alpha, sigma)
    model = sk.ScoreModel(as_network(parametrization, sde), sde, (2,), parametrization)
    pred = model.predict(x, t)
    scale = exact.abs().max() + 1
    # converting x0 (or eps) back to the score divides by sigma^2 (or sigma): a rounding error of
    # eps_mach |x| in the network output becomes eps_mach |x| / sigma^2, so the tolerance carries
    # that condition number (about 450 ulps of it) on top of the fixed 1e-9.
    cond = float(x.abs().max() + 1) / float(sigma) ** 2
    atol = 1e-9 * float(scale) + 1e-13 * cond
    assert torch.allclose(pred.score, exact, rtol=1e-7, atol=atol)
    assert torch.allclose(pred.eps, -sigma * exact, rtol=1e-7, atol=atol * float(sigma))
    # denoiser D = (x + sigma^2 s) / alpha, compared on the scale of x
    x0 = (x + sigma**2 * exact) / alpha
    assert torch.allclose(pred.x0, x0, rtol=1e-7, atol=1e-8 * float(x.abs().max() / alpha + 1))
    # and the pure conversion functions invert each other
    derivs = sde.marginal_derivative(torch.tensor(t, dtype=f64))
    back = to_score(
        parametrization, from_score(parametrization, exact, x, alpha, sigma, *derivs), x, alpha, sigma, *derivs
    )
    assert torch.allclose(back, exact, rtol=1e-7, atol=atol)


def test_constructors_pick_their_parametrisation():
    sde = sk.VPSDE()
    net = as_network("eps", sde)
    assert sk.ScoreModel.from_eps(net, sde, (2,)).parametrization == "eps"
    assert sk.ScoreModel.from_denoiser(net, sde, (2,)).parametrization == "x0"
    assert sk.ScoreModel.from_v(net, sde, (2,)).parametrization == "v"
    assert sk.ScoreModel.from_score(net, sde, (2,)).parametrization == "score"


def test_nfe_counts_network_calls():
    model = MIXTURE.score_model(sk.VPSDE())
    x = torch.zeros(5, 2, dtype=f64)
    model(x, 0.5)
    model.predict(x, torch.full((5,), 0.3, dtype=f64))
    model.denoise(x, 0.2)
    assert model.nfe == 3


def test_per_sample_times_give_each_sample_its_own_score():
    sde = sk.VESDE()
    model = MIXTURE.score_model(sde)
    x = torch.randn(3, 2, dtype=f64, generator=torch.Generator().manual_seed(0))
    ts = torch.tensor([0.1, 0.5, 0.9], dtype=f64)
    batched = model(x, ts)
    for i in range(3):
        assert torch.allclose(batched[i : i + 1], model(x[i : i + 1], ts[i]), rtol=1e-12)


def test_bad_input_names_the_argument_and_the_fix():
    model = MIXTURE.score_model(sk.VPSDE())
    with pytest.raises(ValueError, match=r"x has shape \(4, 3\); this model takes \(batch, 2\)"):
        model(torch.zeros(4, 3), 0.5)
    with pytest.raises(TypeError, match="floating-point"):
        model(torch.zeros(4, 2, dtype=torch.long), 0.5)
    with pytest.raises(ValueError, match=r"outside \[t_min, T\]"):
        model(torch.zeros(4, 2), 1.5)
    with pytest.raises(ValueError, match="one time per sample"):
        model(torch.zeros(4, 2), torch.full((3,), 0.5))
    assert model.nfe == 0  # nothing was spent on refused input
    with pytest.raises(ValueError, match="parametrization='noise'"):
        sk.ScoreModel(lambda x, t: x, sk.VPSDE(), (2,), "noise")
    with pytest.raises(TypeError, match="not a samplekit SDE"):
        sk.ScoreModel(lambda x, t: x, "vp", (2,))
    with pytest.raises(ValueError, match="shape"):
        sk.ScoreModel(lambda x, t: x, sk.VPSDE(), (0,))


def test_network_returning_nan_or_wrong_shape_is_caught_with_t():
    sde = sk.VPSDE()
    nan_model = sk.ScoreModel.from_eps(lambda x, t: x * float("nan"), sde, (2,), name="broken")
    with pytest.raises(sk.NonFiniteError, match=r"'broken' returned NaN/Inf at t=0.25"):
        nan_model(torch.ones(2, 2), 0.25)
    wrong = sk.ScoreModel.from_eps(lambda x, t: x[:, :1], sde, (2,), name="narrow")
    with pytest.raises(ValueError, match=r"'narrow' returned \(2, 1\)"):
        wrong(torch.ones(2, 2), 0.25)
