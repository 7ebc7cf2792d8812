"""log_likelihood with samplekit's adaptive Adams-Bashforth-Moulton (samplekit/adams.py), against exact densities.

The probability-flow ODE carries p_{t_min} to p_T; with the exact p_T in place of the prior the only error
left is the integrator's, so log_prob - prior_log_prob(x_T) + log p_T(x_T) is compared with the exact
log p_{t_min}(x) = mixture.noised_log_prob(x, *sde.marginal(t_min)).  NFE is checked at the raw network.
"""

from __future__ import annotations

import math

import pytest
import torch

import samplekit as sk
from exact_likelihood import counted, integrator_error
from samplekit import targets
from samplekit.adams import odeint_adams

F64 = torch.float64
ADAMS = ("adams_pec", "adams_pece")


@pytest.fixture(scope="module")
def ring():
    mixture, sde = targets.ring2d(), sk.VPSDE()
    x = mixture.sample(32, generator=torch.Generator().manual_seed(3)).to(F64)
    return mixture, sde, x


@pytest.mark.parametrize("method,tols", [("adams_pec", (1e-3, 1e-5, 1e-7)), ("adams_pece", (1e-3, 1e-5))])
def test_matches_exact_log_density_and_error_shrinks_with_tolerance(ring, method, tols):
    mixture, sde, x = ring
    errors, nfes = [], []
    for tol in tols:
        model, net = counted(mixture, sde)
        res = sk.log_likelihood(model, x, estimator="exact", method=method, rtol=tol, atol=tol)
        errors.append(integrator_error(mixture, sde, x, res))
        nfes.append(net.calls)
        assert res.nfe == net.calls  # one network call per right-hand-side evaluation
        assert res.method == method
        assert min(net.times) >= sde.t_min - 1e-12 and max(net.times) <= sde.T + 1e-12  # never outside [t_min, T]
    assert errors[-1] < 10 * tols[-1], errors
    assert all(a > 10 * b for a, b in zip(errors, errors[1:])), errors  # falls with the tolerance
    assert all(a < b for a, b in zip(nfes, nfes[1:])), nfes


def test_pec_spends_one_evaluation_per_step_and_pece_two(ring):
    mixture, sde, x = ring
    calls = {}
    for method in ADAMS:
        model, net = counted(mixture, sde)
        sk.log_likelihood(model, x, estimator="exact", method=method, rtol=1e-4, atol=1e-4)
        calls[method] = net.calls
    assert calls["adams_pec"] < 0.7 * calls["adams_pece"], calls


def test_single_gaussian_closed_form_flow_at_tight_tolerance():
    """One anisotropic Gaussian: log p_{t_min} exact; Adams at 1e-8 within 1e-7 nats/dim."""
    mixture = sk.GaussianMixture(
        torch.tensor([1.0]), torch.tensor([[1.0, -0.5]]), torch.diag(torch.tensor([0.15**2, 0.4**2]))[None]
    )
    sde = sk.VPSDE()
    x = mixture.sample(16, generator=torch.Generator().manual_seed(0)).to(F64)
    model, net = counted(mixture, sde)
    res = sk.log_likelihood(model, x, estimator="exact", method="adams_pec", rtol=1e-8, atol=1e-8)
    assert integrator_error(mixture, sde, x, res) < 1e-7
    assert res.nfe == net.calls


def test_scalar_ode_against_closed_form_both_directions():
    """y' = -2 t y, y(0) = 1: y = exp(-t^2); forward 0 -> 2 and back 2 -> 0, error falls with the tolerance."""

    def f(t, state):
        return (-2 * t * state[0],)

    y0 = torch.ones(3, dtype=F64)
    errs = []
    for tol in (1e-4, 1e-8):
        (y,), stats = odeint_adams(f, (y0,), 0.0, 2.0, tol, tol, final_eval=False)
        errs.append(float((y - math.exp(-4.0)).abs().max()))
        assert stats["nfe"] == stats["n_steps"] + stats["n_rejected"] + 1
        (back,), _ = odeint_adams(f, (y,), 2.0, 0.0, tol, tol)
        assert float((back - 1.0).abs().max()) < 100 * tol
    assert errs[1] < 1e-7 and errs[0] > 100 * errs[1], errs


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"method": "adams"}, r"method='adams' is not a torchdiffeq method nor one of samplekit's.*adams_pec"),
        ({"method": "adams_pec", "options": {"step_size": 0.1}}, r"options=.*step_size.*method='adams_pec'"),
        ({"method": "adams_pec", "options": {"max_order": 0}}, r"max_order=0"),
        ({"method": "adams_pece", "rtol": 0.0}, "rtol"),
    ],
)
def test_bad_arguments_named_before_work(kwargs, match):
    mixture, sde = targets.ring2d(), sk.VPSDE()
    model, net = counted(mixture, sde)
    with pytest.raises(ValueError, match=match):
        sk.log_likelihood(model, torch.zeros(3, 2, dtype=F64), **kwargs)
    assert net.calls == 0


def test_a_run_past_max_steps_is_a_samplekit_error_naming_the_fix():
    mixture, sde = targets.ring2d(), sk.VPSDE()
    model, net = counted(mixture, sde)
    with pytest.raises(sk.errors.SamplekitError, match=r"max_steps=3 steps; loosen rtol/atol or raise max_steps"):
        sk.log_likelihood(model, mixture.sample(4), method="adams_pec", options={"max_steps": 3}, estimator="exact")
    assert net.calls == 4  # the initial derivative and the three steps it was allowed
