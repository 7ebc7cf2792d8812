"""Probability-flow ODE likelihood, trace estimators, encode/decode/interpolate: against exact Gaussian mixtures.

The ODE maps the model's p_{t_min} to p_T, so estimates are compared with the exact
log p_{t_min} = mixture.noised_log_prob(x, *sde.marginal(t_min)); the prior mismatch at T
(prior N(0, I) standing in for p_T) is measured from the latents and stays part of the error.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import samplekit as sk
from samplekit import targets
from samplekit.cli import cli
from samplekit.hookspecs import hookimpl
from samplekit.likelihood import dequantize
from samplekit.noise import NoiseSource
from samplekit.reverse import probability_flow_drift
from samplekit.trace import ExactTrace, HutchinsonGaussian, HutchinsonRademacher, TraceEstimator

F64 = torch.float64


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def exact_log_p_tmin(mixture, sde, x):
    alpha, sigma = sde.marginal(sde.t_min)
    return mixture.noised_log_prob(x, alpha, sigma)


def prior_mismatch(mixture, sde, latent):
    """log prior(x_T) - log p_T(x_T): the part of the error that the prior stand-in makes."""
    alpha, sigma = sde.marginal(sde.T)
    return sde.prior_log_prob(latent) - mixture.noised_log_prob(latent, alpha, sigma)


# --- accuracy of the exact-trace likelihood ----------------------------------------------------------
@pytest.mark.parametrize(
    "name,sde",
    [
        ("ring2d", sk.VPSDE()),
        ("gmm16_full", sk.VPSDE()),
        ("ring2d", sk.SubVPSDE()),
        ("ring2d", sk.VESDE()),
        ("ring2d", sk.EDMSDE()),
        ("ring2d", sk.OUSDE()),
    ],
    ids=["ring2d-vp", "gmm16_full-vp", "ring2d-subvp", "ring2d-ve", "ring2d-edm", "ring2d-ou"],
)
def test_exact_estimator_matches_exact_log_density(name, sde):
    mixture = getattr(targets, name)()
    model = mixture.score_model(sde)
    x = mixture.sample(48, generator=_gen(1))
    d = mixture.d
    res = sk.log_likelihood(model, x, estimator="exact", rtol=1e-5, atol=1e-5)
    truth = exact_log_p_tmin(mixture, sde, x)
    err = (res.log_prob - truth).abs().mean().item() / d
    assert err <= 0.01, f"mean |log p_est - log p_true| = {err:.2e} nats/dim"
    # the prior mismatch is part of that error and measured: under half the budget; without it
    # (log p_T(x_T) in place of the prior) the ODE + trace error alone is also under half the budget
    mismatch = prior_mismatch(mixture, sde, res.latent)
    assert mismatch.abs().mean().item() / d <= 0.005
    assert (res.log_prob - mismatch - truth).abs().mean().item() / d <= 1e-3
    # and with the default t_min, p_{t_min} is close enough to p_0 that the estimate is within budget of it too
    assert (res.log_prob - mixture.log_prob(x)).abs().mean().item() / d <= 0.01
    # the criterion can fail: without the divergence integral the error is large
    assert (res.prior_log_prob - truth).abs().mean().item() / d > 10 * 0.01
    assert res.stderr is None and res.log_prob.dtype == F64 and res.log_prob.shape == (48,)


def test_nfe_and_backward_passes_are_counted():
    mixture = targets.ring2d()
    model = mixture.score_model(sk.VPSDE())
    x = mixture.sample(16, generator=_gen(2))
    model.nfe = 5
    res = sk.log_likelihood(model, x, estimator="exact")
    assert res.nfe == model.nfe - 5 > 0
    assert res.n_vjp == res.nfe * mixture.d  # d backward passes per network call
    res = sk.log_likelihood(model, x, estimator="hutchinson_rademacher", n_probes=3)
    assert res.n_vjp == 3 * res.nfe


def test_tighter_tolerance_costs_more_nfe_and_is_no_less_accurate():
    mixture = targets.ring2d()
    sde = sk.VPSDE()
    x = mixture.sample(32, generator=_gen(3))
    truth = exact_log_p_tmin(mixture, sde, x)
    errs, nfes = [], []
    for tol in (1e-3, 1e-6):
        res = sk.log_likelihood(mixture.score_model(sde), x, estimator="exact", rtol=tol, atol=tol)
        errs.append((res.log_prob - truth).abs().mean().item())
        nfes.append(res.nfe)
    assert nfes[1] > nfes[0] and errs[1] < errs[0]


def test_float32_end_to_end():
    mixture = targets.ring2d()
    sde = sk.VPSDE()
    x = mixture.sample(32, generator=_gen(4), dtype=torch.float32)
    res = sk.log_likelihood(mixture.score_model(sde), x, estimator="exact", rtol=1e-4, atol=1e-4)
    assert res.log_prob.dtype == torch.float32 and res.latent.dtype == torch.float32
    truth = exact_log_p_tmin(mixture, sde, x.double())
    assert (res.log_prob.double() - truth).abs().mean().item() / 2 <= 0.01


# --- Hutchinson estimators: unbiased, Rademacher has lower variance ------------------------------------
def _jacobian_and_estimates(mixture, x, t, n):
    """Exact Jacobian of F at (x, t) and n single-probe estimates per estimator, in one batched call each."""
    sde = sk.VPSDE()
    model = mixture.score_model(sde)
    x_req = x.detach().clone().requires_grad_(True)

    def F(z):
        return probability_flow_drift(model, z[None], t)[0][0]

    jac = torch.autograd.functional.jacobian(F, x_req)
    reps = x.expand(n, -1).clone().requires_grad_(True)
    out = {}
    for est in (HutchinsonGaussian(), HutchinsonRademacher()):
        drift, _ = probability_flow_drift(model, reps, t)
        probes = est.draw_probes(NoiseSource(7, n), reps, 1)
        out[est.name] = est.estimate(drift, reps, probes)[:, 0].detach()
    # the exact estimator on the same point agrees with the Jacobian's trace
    xe = x[None].clone().requires_grad_(True)
    drift, _ = probability_flow_drift(model, xe, t)
    exact = ExactTrace().estimate(drift, xe, None)[0, 0]
    assert torch.allclose(exact, torch.diagonal(jac).sum(), rtol=1e-10, atol=1e-10)
    return jac, exact, out


@settings(max_examples=6, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), t=st.floats(0.01, 0.9))
def test_hutchinson_unbiased_and_rademacher_has_lower_variance(seed, t):
    mixture = targets.gmm16_full()
    x = mixture.noised(*[v.item() for v in sk.VPSDE().marginal(t)]).sample(1, generator=_gen(seed))[0]
    n = 4000
    jac, exact, est = _jacobian_and_estimates(mixture, x, t, n)
    sym = (jac + jac.T) / 2
    theory = {
        "hutchinson_gaussian": 2 * sym.pow(2).sum(),
        "hutchinson_rademacher": 2 * (sym.pow(2).sum() - torch.diagonal(jac).pow(2).sum()),
    }
    for name, values in est.items():
        se = values.std() / math.sqrt(n)
        assert (values.mean() - exact).abs() <= 3 * se, f"{name}: mean {values.mean():.4f} vs exact {exact:.4f}"
        assert values.var() == pytest.approx(theory[name].item(), rel=0.2)
    assert est["hutchinson_rademacher"].var() < est["hutchinson_gaussian"].var()


def test_hutchinson_likelihood_unbiased_with_standard_error():
    mixture = targets.ring2d()
    sde = sk.VPSDE()
    x = mixture.sample(24, generator=_gen(5))
    truth = exact_log_p_tmin(mixture, sde, x)
    exact = sk.log_likelihood(mixture.score_model(sde), x, estimator="exact")
    variances = {}
    for name in ("hutchinson_gaussian", "hutchinson_rademacher"):
        res = sk.log_likelihood(mixture.score_model(sde), x, estimator=name, n_probes=24, seed=3)
        assert res.log_prob_probes.shape == (24, 24) and res.stderr.shape == (24,)
        # per sample: the probe mean within 3 standard errors of the exact-trace value (plus the ODE error)
        z = (res.log_prob - exact.log_prob).abs() / (res.stderr + 1e-4)
        assert (z <= 3.5).float().mean() >= 0.9
        # over the batch: the mean error is within 3 standard errors of the mean
        se_mean = res.stderr.pow(2).sum().sqrt() / x.shape[0]
        assert (res.log_prob - truth).mean().abs() <= 3 * se_mean + 1e-3
        variances[name] = res.log_prob_probes.var(dim=1).mean().item()
    assert variances["hutchinson_rademacher"] < variances["hutchinson_gaussian"]


def test_probes_follow_the_seed():
    mixture = targets.ring2d()
    model = mixture.score_model(sk.VPSDE())
    x = mixture.sample(8, generator=_gen(6))
    a = sk.log_likelihood(model, x, seed=11, rtol=1e-3, atol=1e-3).log_prob
    b = sk.log_likelihood(model, x, seed=11, rtol=1e-3, atol=1e-3).log_prob
    c = sk.log_likelihood(model, x, seed=12, rtol=1e-3, atol=1e-3).log_prob
    assert torch.equal(a, b) and not torch.equal(a, c)


# --- encode / decode / interpolate ----------------------------------------------------------------
@pytest.mark.parametrize("name", ["ring2d", "gmm16_full"])
def test_encode_decode_round_trip_within_tolerance(name):
    mixture = getattr(targets, name)()
    model = mixture.score_model(sk.VPSDE())
    x = mixture.sample(32, generator=_gen(7))
    errors = []
    for tol in (1e-5, 1e-7):
        back = sk.decode(model, sk.encode(model, x, rtol=tol, atol=tol), rtol=tol, atol=tol)
        err = (back - x).abs()
        assert err.mean() <= 20 * tol and err.max() <= 1000 * tol
        errors.append(err.mean().item())
    assert errors[1] < errors[0] / 10


@pytest.mark.parametrize("name,n", [("ring2d", 3000), ("gmm16_full", 2000)])
def test_encoded_data_distributed_like_the_prior(name, n):
    mixture = getattr(targets, name)()
    sde = sk.VPSDE()
    z = sk.encode(mixture.score_model(sde), mixture.sample(n, generator=_gen(8)), rtol=1e-4, atol=1e-4)
    # exact moments of p_T (the prior up to alpha_T = 0.0066), and the prior's: both checked
    alpha, sigma = (v.item() for v in sde.marginal(sde.T))
    mean_T = alpha * mixture.mean
    cov_T = alpha**2 * mixture.covariance + sigma**2 * torch.eye(mixture.d, dtype=F64)
    assert (mean_T.abs().max() < 0.05) and ((cov_T - torch.eye(mixture.d, dtype=F64)).abs().max() < 0.01)
    se = 1 / math.sqrt(n)
    assert (z.mean(0) - mean_T).abs().max() <= 4 * se
    assert (torch.cov(z.T) - cov_T).abs().max() <= 5 * math.sqrt(2) * se
    # the data themselves fail the same check
    x = mixture.sample(n, generator=_gen(9))
    assert (torch.cov(x.T) - cov_T).abs().max() > 5 * math.sqrt(2) * se


@pytest.mark.parametrize("spherical", [False, True])
def test_interpolate_endpoints_and_shape(spherical):
    mixture = targets.ring2d()
    model = mixture.score_model(sk.VPSDE())
    x1 = mixture.sample(5, generator=_gen(10))
    x2 = mixture.sample(5, generator=_gen(11))
    out = sk.interpolate(model, x1, x2, [1.0, 0.5, 0.0], spherical=spherical, rtol=1e-7, atol=1e-7)
    assert out.shape == (3, 5, 2)
    assert torch.allclose(out[0], x1, atol=1e-4) and torch.allclose(out[2], x2, atol=1e-4)
    # the midpoint is the decoded mix of the two latents
    z1, z2 = sk.encode(model, x1, rtol=1e-7, atol=1e-7), sk.encode(model, x2, rtol=1e-7, atol=1e-7)
    if spherical:
        theta = torch.arccos(
            (z1 * z2).sum(1, keepdim=True) / (z1.norm(dim=1, keepdim=True) * z2.norm(dim=1, keepdim=True))
        )
        mid = (torch.sin(theta / 2) * (z1 + z2)) / torch.sin(theta)
    else:
        mid = (z1 + z2) / 2
    assert torch.allclose(out[1], sk.decode(model, mid, rtol=1e-7, atol=1e-7), atol=1e-4)


# --- bits per dimension ---------------------------------------------------------------------------
def test_bits_per_dim_convention_against_exact_discrete_probability():
    # a 2-D Gaussian "image" in [-1, 1], 256 levels: the model's bits/dim of dequantised pixels is
    # close to the exact bits/dim of the discrete pixels (their bin probabilities are products of erfs)
    mean, std = torch.tensor([0.1, -0.2], dtype=F64), 0.3
    mixture = sk.GaussianMixture([1.0], mean[None], torch.full((1, 2), std**2, dtype=F64))
    sde = sk.VPSDE()
    levels = ((mixture.sample(64, generator=_gen(12)).clamp(-0.999, 0.999) + 1) * 128).floor().long()
    x = dequantize(levels, bins=256, data_range=(-1, 1), seed=0, dtype=F64)
    assert torch.equal(((x + 1) * 128).floor().long(), levels)
    res = sk.log_likelihood(mixture.score_model(sde), x, estimator="exact", bins=256, data_range=(-1, 1))
    cont = -res.log_prob / (2 * math.log(2))
    assert torch.allclose(res.bits_per_dim, cont + 7)  # log2(256 / 2) = 7
    sd_tmin = math.sqrt(std**2 * sde.marginal(sde.t_min)[0].item() ** 2 + sde.marginal(sde.t_min)[1].item() ** 2)
    normal = torch.distributions.Normal(mean * sde.marginal(sde.t_min)[0].item(), sd_tmin)
    lo, hi = levels.double() / 128 - 1, (levels.double() + 1) / 128 - 1
    exact_bits = -torch.log2(normal.cdf(hi) - normal.cdf(lo)).sum(1) / 2
    assert (res.bits_per_dim - exact_bits).abs().mean() < 0.01
    other = sk.log_likelihood(mixture.score_model(sde), x, estimator="exact", bins=256, data_range=(0, 1))
    assert torch.allclose(other.bits_per_dim - res.bits_per_dim, torch.full_like(cont, 1.0), atol=1e-6)


# --- bad input ------------------------------------------------------------------------------------
def _big_model(d):
    return sk.ScoreModel.from_score(lambda x, t: -x, sk.VPSDE(), (d,))


def test_exact_estimator_refuses_large_d_and_suggests_hutchinson():
    model = _big_model(3072)
    x = torch.zeros(2, 3072)
    with pytest.raises(ValueError, match="hutchinson_rademacher"):
        sk.log_likelihood(model, x, estimator="exact")
    assert model.nfe == 0
    # the limit is an option, and Hutchinson handles the same input
    res = sk.log_likelihood(model, x, estimator="hutchinson_rademacher", rtol=1e-3, atol=1e-3)
    assert torch.isfinite(res.log_prob).all()


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("fn", ["log_likelihood", "encode", "decode"])
def test_non_finite_input_rejected_before_work(bad, fn):
    model = targets.ring2d().score_model(sk.VPSDE())
    x = torch.zeros(4, 2, dtype=F64)
    x[2, 1] = bad
    with pytest.raises(ValueError, match=r"NaN or Inf in rows \[2\]"):
        getattr(sk, fn)(model, x)
    assert model.nfe == 0


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"method": "dopri"}, "not a torchdiffeq method"),
        ({"rtol": 0.0}, "rtol"),
        ({"atol": -1e-5}, "atol"),
        ({"n_probes": 0}, "n_probes"),
        ({"estimator": "exact", "n_probes": 4}, "n_probes"),
        ({"estimator": "hutchinson_rademacer"}, "did you mean 'hutchinson_rademacher'"),
        ({"bins": 1}, "bins"),
        ({"bins": 256, "data_range": (1, -1)}, "data_range"),
    ],
)
def test_bad_arguments_named(kwargs, match):
    model = targets.ring2d().score_model(sk.VPSDE())
    with pytest.raises((ValueError, KeyError), match=match):
        sk.log_likelihood(model, torch.zeros(3, 2), **kwargs)
    assert model.nfe == 0


def test_bad_shapes_and_types():
    model = targets.ring2d().score_model(sk.VPSDE())
    with pytest.raises(ValueError, match="takes"):
        sk.log_likelihood(model, torch.zeros(3, 3))
    with pytest.raises(TypeError, match="floating-point"):
        sk.encode(model, torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(TypeError, match="ScoreModel"):
        sk.log_likelihood(lambda x, t: x, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="weights"):
        sk.interpolate(model, torch.zeros(2, 2), torch.ones(2, 2), [])


def test_missing_torchdiffeq_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchdiffeq", None)
    model = targets.ring2d().score_model(sk.VPSDE())
    with pytest.raises(ImportError, match=r"samplekit\[ode\]"):
        sk.log_likelihood(model, torch.zeros(2, 2))


# --- plugins and the CLI --------------------------------------------------------------------------
class JacobianTrace(TraceEstimator):
    """Third-party exact trace: the full Jacobian per sample with torch.func."""

    name = "jacobian"
    stochastic = False

    def estimate(self, out, x, probes):
        rows = [
            self.vjp(out, x, torch.nn.functional.one_hot(torch.full((x.shape[0],), i), x.shape[1]).to(x), retain=True)[
                :, i
            ]
            for i in range(x.shape[1])
        ]
        return torch.stack(rows, 1).sum(1, keepdim=True)


class ThirdParty:
    @hookimpl
    def samplekit_register_trace_estimators(self, register):
        register("jacobian", JacobianTrace, stochastic=False)


def test_builtin_estimators_registered_and_third_party_plugin(fresh_registry):
    registry = fresh_registry(ThirdParty(), builtins=("samplekit_builtin",))
    names = {c.name: c for c in registry.available("trace_estimator")}
    assert {"exact", "hutchinson_gaussian", "hutchinson_rademacher", "jacobian"} <= set(names)
    assert names["exact"].plugin == "samplekit_builtin" and names["jacobian"].info["stochastic"] is False
    mixture = targets.ring2d()
    model = mixture.score_model(sk.VPSDE())
    x = mixture.sample(16, generator=_gen(13))
    ours = sk.log_likelihood(model, x, estimator=registry.create("trace_estimator", "jacobian"))
    exact = sk.log_likelihood(model, x, estimator="exact")
    assert ours.estimator == "jacobian"
    assert torch.allclose(ours.log_prob, exact.log_prob, atol=1e-8)


def test_cli_likelihood_on_target_and_npz(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["likelihood", "--target", "ring2d", "-n", "40", "--estimator", "exact", "--json"])
    assert result.exit_code == 0, result.output
    import json

    summary = json.loads(result.output)
    assert summary["nfe"] > 0 and summary["mean_abs_error_nats_per_dim"] <= 0.01
    points = tmp_path / "pts.npz"
    np.savez(points, samples=targets.ring2d().sample(20, generator=_gen(14)).numpy())
    out = tmp_path / "ll.npz"
    result = runner.invoke(cli, ["likelihood", "--points", str(points), "--n-probes", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "nats/dim" in result.output and "NFE" in result.output
    with np.load(out) as data:
        assert data["log_prob"].shape == (20,) and data["stderr"].shape == (20,)
