"""The adaptive torchdiffeq solvers against the exact probability-flow ODE solution.

For a single Gaussian N(mu, S), S diagonal, p_t = N(alpha_t mu, alpha_t^2 S + sigma_t^2) and the
probability-flow ODE maps each coordinate affinely:
    x_t = alpha_t mu + sqrt(alpha_t^2 S + sigma_t^2) / sqrt(alpha_T^2 S + sigma_T^2) (x_T - alpha_T mu).
"""

from __future__ import annotations

import pytest
import torch

import samplekit as sk
from samplekit.solver import SolverError
from samplekit.targets import GaussianMixture, ring2d

ADAPTIVE = ("ode_dopri5", "ode_bosh3", "ode_adaptive_heun", "ode_dopri8")
# (loose, tight) tolerances; adaptive Heun (order 2) costs ~10x NFE per decade, so it stops earlier
TOLERANCES = {
    "ode_dopri5": (1e-3, 1e-6),
    "ode_bosh3": (1e-3, 1e-6),
    "ode_adaptive_heun": (1e-3, 1e-5),
    "ode_dopri8": (1e-3, 1e-6),
}
MU, S = torch.tensor([[1.0, -2.0]], dtype=torch.float64), torch.tensor([[0.5, 2.0]], dtype=torch.float64)


def gaussian():
    return GaussianMixture([1.0], MU, S)


def prior_draw(sde, n=64, seed=0):
    return sde.prior_std * torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def exact_endpoint(sde, x_T):
    a_T, s_T = sde.marginal(torch.tensor(sde.T, dtype=torch.float64))
    a_0, s_0 = sde.marginal(torch.tensor(sde.t_min, dtype=torch.float64))
    return a_0 * MU + ((a_0**2 * S + s_0**2) / (a_T**2 * S + s_T**2)).sqrt() * (x_T - a_T * MU)


def run(name, sde, x_T, tol, nfe=10**5):
    model = gaussian().score_model(sde)
    res = sk.sample(model, name, nfe=nfe, x_T=x_T, rtol=tol, atol=tol, progress=False)
    assert res.nfe == model.nfe  # NFE is what the model counted
    return res, (res.samples - exact_endpoint(sde, x_T)).abs().max().item()


def test_registered_with_declared_capabilities():
    infos = {c.name: c for c in sk.available("solver")}
    for name in ADAPTIVE:
        assert infos[name].plugin == "samplekit_torchdiffeq"
        assert infos[name].info["adaptive"] is True and infos[name].info["stochastic"] is False


@pytest.mark.parametrize("name", ADAPTIVE)
def test_exact_gaussian_endpoint_within_tolerance_and_tighter_costs_more(name):
    sde, x_T = sk.VPSDE(), prior_draw(sk.VPSDE())
    (loose, err_loose), (tight, err_tight) = (run(name, sde, x_T, tol) for tol in TOLERANCES[name])
    # global error is a small multiple of the local tolerance (measured: 0.4x .. 5x)
    assert err_loose < 20 * TOLERANCES[name][0]
    assert err_tight < 20 * TOLERANCES[name][1]
    assert err_tight < err_loose / 10
    assert tight.nfe > loose.nfe
    assert tight.samples.dtype == torch.float64


@pytest.mark.parametrize("name", ("ode_dopri5", "ode_dopri8"))
def test_exact_gaussian_endpoint_on_edm(name):
    sde = sk.EDMSDE()
    _, err = run(name, sde, prior_draw(sde), 1e-6)
    assert err < 50 * 1e-6


def test_max_nfe_cap_stops_with_a_clear_error():
    sde = sk.VPSDE()
    model = gaussian().score_model(sde)
    with pytest.raises(SolverError, match=r"max_nfe=20.*nfe=\d+.*loosen the tolerances.*raise nfe"):
        sk.sample(model, "ode_bosh3", nfe=20, x_T=prior_draw(sde), rtol=1e-8, atol=1e-8, progress=False)
    assert model.nfe <= 20  # the cap is never passed
    # a budget that suffices is spent honestly and respected
    res, _ = run("ode_bosh3", sde, prior_draw(sde), 1e-3, nfe=200)
    assert res.nfe <= 200


def test_bad_options_are_refused_before_any_work():
    with pytest.raises(ValueError, match="rtol"):
        sk.get_solver("ode_dopri5", rtol=-1.0)
    with pytest.raises(SolverError, match="no option 'step_size'"):
        sk.get_solver("ode_dopri5", step_size=0.1)


def test_adaptive_solvers_agree_on_the_ring():
    sde = sk.VPSDE()
    x_T = prior_draw(sde, n=32, seed=1)
    model = ring2d().score_model(sde)
    ref = sk.sample(model, "ode_dopri8", nfe=10**5, x_T=x_T, rtol=1e-9, atol=1e-9, progress=False).samples
    for name, tol in (("ode_dopri5", 1e-7), ("ode_bosh3", 1e-7), ("ode_adaptive_heun", 1e-6)):
        out = sk.sample(model, name, nfe=10**5, x_T=x_T, rtol=tol, atol=tol, progress=False).samples
        assert (out - ref).abs().max().item() < 100 * tol, name
    # and the end points are not trivially close to the start: the ODE really moved them onto the ring
    assert (ref - x_T).abs().max() > 1.0


def test_missing_torchdiffeq_is_reported_not_fatal(fresh_registry, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torchdiffeq", None)
    monkeypatch.delitem(sys.modules, "samplekit_torchdiffeq", raising=False)
    registry = fresh_registry(builtins=("samplekit_builtin", "samplekit_torchdiffeq"))
    (failure,) = [f for f in registry.failures if f.plugin == "samplekit_torchdiffeq"]
    assert "torchdiffeq" in failure.error
    assert "euler_maruyama" in [c.name for c in registry.available("solver")]
