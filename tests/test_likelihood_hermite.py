"""log_likelihood with samplekit's Hermite-Obreshkov PEC integrator (samplekit/hermite.py), against exact answers.

Exact answers: the quadrature weights integrate every polynomial of degree < 2m exactly; a scalar ODE with a
closed-form solution; the second derivatives the likelihood's right-hand side returns against central
differences along the exact flow; log p_{t_min} of exact mixtures (the exact p_T at the end, so the only
error is the integrator's).  NFE is checked at the raw network.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from click.testing import CliRunner

import samplekit as sk
from exact_likelihood import counted, integrator_error
from samplekit import targets
from samplekit.cli import cli
from samplekit.hermite import hermite_weights, odeint_hermite
from samplekit.likelihood import _hermite_rhs
from samplekit.noise import NoiseSource
from samplekit.trace import ExactTrace, TraceEstimator

F64 = torch.float64


@pytest.mark.parametrize("nodes", [[0.0], [-0.7, 0.0], [-1.3, -0.4, 0.0, 1.0], [0.2, 0.9]])
def test_weights_integrate_polynomials_of_degree_below_twice_the_nodes(nodes):
    gen = torch.Generator().manual_seed(len(nodes))
    t_n, h = 0.3, 0.25
    coeffs = torch.randn(2 * len(nodes), generator=gen, dtype=F64)

    def poly(t, c=coeffs):
        return sum(ci * t**i for i, ci in enumerate(c.tolist()))

    def dpoly(t, c=coeffs):
        return sum(i * ci * t ** (i - 1) for i, ci in enumerate(c.tolist()) if i > 0)

    def antider(t, c=coeffs):
        return sum(ci * t ** (i + 1) / (i + 1) for i, ci in enumerate(c.tolist()))

    times = [t_n + h * s for s in nodes]
    w, v = hermite_weights(times, t_n, h)
    quad = sum(wi * poly(t) for wi, t in zip(w, times)) + sum(vi * dpoly(t) for vi, t in zip(v, times))
    assert quad == pytest.approx(antider(t_n + h) - antider(t_n), rel=1e-10, abs=1e-12)


def test_scalar_ode_against_closed_form_both_directions():
    """y' = y cos t, y(0) = 1: y = exp(sin t), y'' = y (cos^2 t - sin t); error falls with the tolerance.

    Measured: the global error is 10-30x the (local) tolerance forward over the ~1 period and 100-150x after
    the round trip 0 -> 6 -> 0 (global error grows with the steps taken; the bounds leave 3-4x room)."""

    def f(t, state):
        y = state[0]
        return (y * torch.cos(t),), (y * (torch.cos(t) ** 2 - torch.sin(t)),)

    y0 = torch.ones(3, dtype=F64)
    errs = []
    for tol in (1e-4, 1e-8):
        (y,), stats = odeint_hermite(f, (y0,), 0.0, 6.0, tol, tol)
        errs.append(float((y - math.exp(math.sin(6.0))).abs().max()))
        assert stats["nfe"] == stats["n_steps"] + stats["n_rejected"] + 1
        assert errs[-1] < 100 * tol
        (back,), _ = odeint_hermite(f, (y,), 6.0, 0.0, tol, tol)
        assert float((back - 1.0).abs().max()) < 500 * tol
    assert errs[0] > 1000 * errs[1], errs


@pytest.mark.parametrize("estimator", ["exact", "hutchinson_rademacher"])
def test_second_derivatives_match_central_differences_along_the_flow(estimator):
    """G = dF/dt + (dF/dx) F and d(div F)/dt against (F(t+e, x+eF) - F(t-e, x-eF)) / 2e on gmm16_full."""
    mixture, sde = targets.gmm16_full(), sk.VPSDE()
    model = mixture.score_model(sde)
    x = mixture.sample(8, generator=torch.Generator().manual_seed(0)).to(F64)
    est = sk.get_trace_estimator(estimator)
    probes = est.draw_probes(NoiseSource(0, 8), x, 1) if est.stochastic else None
    rhs = _hermite_rhs(model, est, probes, [0])
    delta = torch.zeros(8, 1, dtype=F64)
    t, eps = 0.3, 1e-5
    (f, div), (g, ddiv) = rhs(torch.tensor(t, dtype=F64), (x, delta))
    (f_plus, div_plus), _ = rhs(torch.tensor(t + eps, dtype=F64), (x + eps * f, delta))
    (f_minus, div_minus), _ = rhs(torch.tensor(t - eps, dtype=F64), (x - eps * f, delta))
    assert torch.allclose(g, (f_plus - f_minus) / (2 * eps), rtol=1e-5, atol=1e-5)
    assert torch.allclose(ddiv, (div_plus - div_minus) / (2 * eps), rtol=1e-5, atol=1e-5)
    assert g.abs().max() > 1.0  # not a vanishing comparison


@pytest.fixture(scope="module")
def ring():
    mixture, sde = targets.ring2d(), sk.VPSDE()
    x = mixture.sample(32, generator=torch.Generator().manual_seed(3)).to(F64)
    return mixture, sde, x


def test_matches_exact_log_density_and_error_shrinks_with_tolerance(ring):
    mixture, sde, x = ring
    errors, nfes = [], []
    for tol in (1e-3, 1e-5, 1e-7):
        model, net = counted(mixture, sde)
        res = sk.log_likelihood(model, x, estimator="exact", method="hermite_pec", rtol=tol, atol=tol)
        errors.append(integrator_error(mixture, sde, x, res))
        nfes.append(net.calls)
        assert res.nfe == net.calls  # one network call per evaluation, the second derivatives by autodiff
        assert res.n_vjp == net.calls * (mixture.d + 1 + 2) + 1  # d VJPs, div', the JVP's two; the t check
        assert min(net.times) >= sde.t_min - 1e-12 and max(net.times) <= sde.T + 1e-12
    assert errors[-1] < 10 * 1e-7, errors
    assert all(a > 10 * b for a, b in zip(errors, errors[1:])), errors
    assert all(a < b for a, b in zip(nfes, nfes[1:])), nfes


def test_half_the_evaluations_of_dopri5_at_no_worse_error(ring):
    """The point of the method (issue 12 item 5): at rtol = atol = 1e-5 on ring2d, <= 0.5x dopri5's NFE."""
    mixture, sde, x = ring
    runs = {}
    for method in ("hermite_pec", "dopri5"):
        model, net = counted(mixture, sde)
        res = sk.log_likelihood(model, x, estimator="exact", method=method)
        runs[method] = (net.calls, integrator_error(mixture, sde, x, res))
    assert runs["hermite_pec"][0] <= 0.5 * runs["dopri5"][0], runs
    assert runs["hermite_pec"][1] <= runs["dopri5"][1], runs


def test_hutchinson_probes_give_the_same_estimate_as_dopri5_at_tight_tolerance(ring):
    """Same probes, two integrators: the Hutchinson estimate itself (not the exact density) agrees."""
    mixture, sde, x = ring
    model = mixture.score_model(sde)
    kw = dict(estimator="hutchinson_rademacher", n_probes=2, seed=5, rtol=1e-8, atol=1e-8)
    a = sk.log_likelihood(model, x, method="hermite_pec", **kw)
    b = sk.log_likelihood(model, x, method="dopri5", **kw)
    assert torch.allclose(a.log_prob_probes, b.log_prob_probes, atol=1e-5)
    assert a.log_prob_probes.std(1).mean() > 0.01  # the probes differ: a real two-probe estimate


class NoGraphTrace(TraceEstimator):
    """A third-party estimator written before create_graph existed."""

    name, stochastic = "no_graph", False

    def estimate(self, out, x, probes):
        return ExactTrace().estimate(out, x, probes)


class DetachedTime:
    """An exact-score network that rounds its time input (as a discrete-timestep network does)."""

    def __init__(self, net) -> None:
        self.net, self.calls = net, 0

    def __call__(self, x, t):
        self.calls += 1
        return self.net(x, torch.as_tensor(t).detach())


def test_bad_arguments_named_before_work():
    mixture, sde = targets.ring2d(), sk.VPSDE()
    model, net = counted(mixture, sde)
    x = torch.zeros(3, 2, dtype=F64)
    with pytest.raises(ValueError, match=r"options=.*first_step.*method='hermite_pec'.*max_order"):
        sk.log_likelihood(model, x, method="hermite_pec", options={"first_step": 0.1})
    with pytest.raises(ValueError, match=r"max_order=4 must be 1, 2 or 3"):
        sk.log_likelihood(model, x, method="hermite_pec", options={"max_order": 4})
    with pytest.raises(TypeError, match=r"estimate\(\) must accept create_graph=True.*NoGraphTrace"):
        sk.log_likelihood(model, x, method="hermite_pec", estimator=NoGraphTrace())
    guided = sk.guidance.classifier_free(model, counted(mixture, sde)[0], scale=2.0)
    with pytest.raises(TypeError, match=r"is a wrapper \(ClassifierFreeGuidance.*method='dopri5'"):
        sk.log_likelihood(guided, x, method="hermite_pec")
    assert net.calls == 0


def test_a_time_input_without_gradient_is_refused_by_name():
    mixture, sde = targets.ring2d(), sk.VPSDE()
    net = DetachedTime(mixture.score_model(sde).net)
    model = sk.ScoreModel.from_score(net, sde, (2,), name="detached")
    with pytest.raises(ValueError, match=r"'detached' has no gradient in its time input.*method='dopri5'"):
        sk.log_likelihood(model, mixture.sample(4).to(F64), method="hermite_pec", estimator="exact")
    assert net.calls == 1  # refused at the first evaluation


def test_cli_runs_it_and_refuses_a_discrete_time_network_with_the_fix():
    runner = CliRunner()
    args = ["likelihood", "--target", "ring2d", "-n", "40", "--estimator", "exact", "--json"]
    ours = runner.invoke(cli, [*args, "--method", "hermite_pec"])
    base = runner.invoke(cli, args)
    assert ours.exit_code == 0 and base.exit_code == 0, ours.output + base.output
    ours, base = json.loads(ours.output), json.loads(base.output)
    assert ours["nfe"] <= 0.6 * base["nfe"] and ours["mean_abs_error_nats_per_dim"] <= 0.01, (ours, base)
    refused = runner.invoke(cli, ["likelihood", "--target", "digits_unet", "-n", "2", "--method", "hermite_pec"])
    assert refused.exit_code != 0 and "Traceback" not in refused.output
    assert "no gradient in its time input" in refused.output and "method='dopri5'" in refused.output


def test_image_shaped_model_matches_the_flat_one():
    """A (1, 4, 4) model (the 16-D mixture's score behind a reshape) gives the flat model's log p."""
    mixture, sde = targets.gmm16_full(), sk.VPSDE()
    flat = mixture.score_model(sde)

    def net(x, t):
        return flat.net(x.flatten(1), t).reshape(x.shape)

    shaped = sk.ScoreModel.from_score(net, sde, (1, 4, 4), name="shaped")
    x = mixture.sample(6, generator=torch.Generator().manual_seed(2)).to(F64)
    a = sk.log_likelihood(shaped, x.reshape(6, 1, 4, 4), estimator="exact", method="hermite_pec")
    b = sk.log_likelihood(flat, x, estimator="exact", method="hermite_pec")
    assert a.latent.shape == (6, 1, 4, 4) and a.nfe == b.nfe
    assert torch.allclose(a.log_prob, b.log_prob, atol=1e-10)
