"""Flow matching (issue 11, item 4): the ``rectified_flow`` SDE, the ``flow`` parametrisation, ``from_flow`` in
both time conventions, the exact mixture model, the ``shift`` schedule option, and every registered solver
sampling the ring under rectified flow (from t = T = 1, where alpha_T = 0) to the exact-sample noise floor."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import samplekit as sk
from samplekit.reverse import probability_flow_drift, reverse_drift_from
from samplekit.score import from_eps_x0, to_eps_x0
from samplekit.targets import ring2d
from test_sde import sdes

f64 = torch.float64
RF = sk.get_sde("rectified_flow")
MIX = sk.GaussianMixture([0.3, 0.7], [[-2.0, 0.5], [1.5, -1.0]], [[[1.0, 0.3], [0.3, 0.5]], [[0.2, 0.0], [0.0, 0.8]]])


def noised(mix, sde, t, n=32, seed=0):
    alpha, sigma = sde.marginal(torch.tensor(t, dtype=f64))
    g = torch.Generator().manual_seed(seed)
    return alpha * mix.sample(n, g) + sigma * torch.randn(n, mix.d, generator=g, dtype=f64)


# --- the SDE ---------------------------------------------------------------------------------------
def test_rectified_flow_is_the_linear_interpolant_with_an_exact_N01_prior():
    t = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=f64)
    alpha, sigma = RF.marginal(t)
    assert torch.equal(alpha, 1 - t) and torch.equal(sigma, t)
    assert RF.T == 1.0 and RF.prior_std == 1.0 and RF.alpha_T_is_zero and 0 < RF.t_min <= 1e-2
    assert RF.log_snr(torch.tensor(1.0, dtype=f64)) == -math.inf
    assert float(RF.t_from_log_snr(torch.tensor(-math.inf, dtype=f64))) == 1.0
    lam = RF.log_snr(t[1:3])
    assert torch.allclose(RF.t_from_log_snr(lam), t[1:3], atol=1e-15)
    d_alpha, d_sigma = RF.marginal_derivative(t)
    assert torch.equal(d_alpha, -torch.ones_like(t)) and torch.equal(d_sigma, torch.ones_like(t))
    assert not sk.VPSDE().alpha_T_is_zero


@settings(max_examples=100, deadline=None)
@given(st.one_of(sdes(), st.just(RF)), st.floats(0.05, 0.95))
def test_marginal_derivative_matches_finite_differences_for_every_sde(sde, u):
    t = sde.t_min + u * (sde.T - sde.t_min)
    h = 1e-6 * (sde.T - sde.t_min)
    tt = torch.tensor([t - h, t + h], dtype=f64)
    alpha, sigma = sde.marginal(tt)
    d_alpha, d_sigma = sde.marginal_derivative(torch.tensor(t, dtype=f64))
    scale = 1 + abs(float(d_alpha)) + abs(float(d_sigma))
    assert abs(float((alpha[1] - alpha[0]) / (2 * h)) - float(d_alpha)) < 1e-5 * scale
    assert abs(float((sigma[1] - sigma[0]) / (2 * h)) - float(d_sigma)) < 1e-5 * scale


@settings(max_examples=60, deadline=None)
@given(st.one_of(sdes(), st.just(RF)), st.floats(0.0, 0.97), st.integers(0, 2**16))
def test_probability_flow_drift_is_alpha_prime_x0_plus_sigma_prime_eps(sde, u, seed):
    """alpha' x0 + sigma' eps (the form used) equals f - g^2 s / 2 wherever both are finite."""
    t = sde.t_min + u * (sde.T - sde.t_min)
    model = MIX.score_model(sde)
    x = noised(MIX, sde, t, seed=seed)
    drift, pred = probability_flow_drift(model, x, t)
    classic = reverse_drift_from(model, x, t, pred.score, lam=1.0)
    assert torch.allclose(drift, classic, rtol=1e-6, atol=1e-8 * float(classic.abs().max() + 1))


# --- the flow parametrisation -------------------------------------------------------------------
@settings(max_examples=150, deadline=None)
@given(
    st.one_of(sdes(), st.just(RF)),
    st.sampled_from(["score", "eps", "x0", "v"]),
    st.floats(0.0, 1.0),
    st.integers(0, 2**16),
)
def test_flow_round_trips_with_every_other_parametrisation(sde, other, u, seed):
    t = torch.tensor(sde.t_min + u * (sde.T - sde.t_min), dtype=f64)
    if other in ("score", "eps") and sde.alpha_T_is_zero:
        t = t.clamp_max(0.999)  # x0 is undefined from eps alone at alpha = 0
    alpha, sigma = sde.marginal(t)
    d_alpha, d_sigma = sde.marginal_derivative(t)
    g = torch.Generator().manual_seed(seed)
    x0, eps = torch.randn(16, 2, generator=g, dtype=f64), torch.randn(16, 2, generator=g, dtype=f64)
    x = alpha * x0 + sigma * eps
    u_flow = from_eps_x0("flow", eps, x0, alpha, sigma, d_alpha, d_sigma)
    assert torch.allclose(u_flow, d_alpha * x0 + d_sigma * eps)
    eps_f, x0_f = to_eps_x0("flow", u_flow, x, alpha, sigma, d_alpha, d_sigma)
    tol = 1e-9 * (1 + float(d_alpha.abs() + d_sigma.abs()))
    assert torch.allclose(eps_f, eps, atol=tol * (1 + float(alpha.abs()) / float(sigma)))
    assert torch.allclose(x0_f, x0, atol=tol * (1 + float(sigma) / max(float(alpha), 1e-300)) if alpha > 0 else tol)
    # flow -> other -> flow
    out = from_eps_x0(other, eps_f, x0_f, alpha, sigma)
    eps_o, x0_o = to_eps_x0(other, out, x, alpha, sigma)
    back = from_eps_x0("flow", eps_o, x0_o, alpha, sigma, d_alpha, d_sigma)
    cond = 1 + 1 / float(sigma) ** 2 + (1 / float(alpha) if alpha > 0 else 0)
    assert torch.allclose(back, u_flow, rtol=1e-7, atol=1e-12 * cond * float(u_flow.abs().max() + 1))


def exact_velocity(mix, sde, convention="noise_at_1"):
    """u = alpha' x0 + sigma' eps of the mixture, as a network in the given time convention."""

    def net(x, t):
        tt = sde.T - t if convention == "noise_at_0" else t
        alpha, sigma = sde.marginal(tt)
        d_alpha, d_sigma = sde.marginal_derivative(tt)
        x0 = mix.noised_denoiser(x, alpha, sigma)
        eps = (x - alpha[:, None] * x0) / sigma[:, None]
        u = d_alpha[:, None] * x0 + d_sigma[:, None] * eps
        return -u if convention == "noise_at_0" else u

    return net


def test_exact_mixture_model_under_rectified_flow_is_exact_at_every_time_including_T():
    model = MIX.score_model(RF)
    for t in (RF.t_min, 0.3, 0.9):
        x = noised(MIX, RF, t)
        alpha, sigma = RF.marginal(torch.tensor(t, dtype=f64))
        assert torch.allclose(model(x, t), MIX.noised_score(x, alpha, sigma), rtol=1e-8, atol=1e-8)
    x = torch.randn(8, 2, dtype=f64)
    pred = model.predict(x, 1.0)
    assert torch.allclose(pred.x0, MIX.mean.expand(8, 2), atol=1e-12)  # E[X_0 | X_1] = E[X_0]
    assert torch.allclose(pred.eps, x) and torch.allclose(pred.score, -x)


@pytest.mark.parametrize("convention", ["noise_at_1", "noise_at_0"])
def test_from_flow_in_either_time_convention_predicts_the_exact_x0_and_eps(convention):
    model = sk.ScoreModel.from_flow(exact_velocity(MIX, RF, convention), RF, (2,), time_convention=convention)
    exact = MIX.score_model(RF)
    for t in (RF.t_min, 0.5, 1.0):
        x = noised(MIX, RF, t)
        p, q = model.predict(x, t), exact.predict(x, t)
        assert torch.allclose(p.x0, q.x0, atol=1e-10) and torch.allclose(p.eps, q.eps, atol=1e-9)


def test_a_flow_network_samples_as_the_exact_model_does():
    flow = sk.ScoreModel.from_flow(exact_velocity(ring2d(), RF, "noise_at_0"), RF, (2,), time_convention="noise_at_0")
    exact = ring2d().score_model(RF)
    x_T = torch.randn(64, 2, dtype=f64, generator=torch.Generator().manual_seed(0))
    a = sk.sample(flow, "dpmpp_2m", nfe=20, x_T=x_T, progress=False).samples
    b = sk.sample(exact, "dpmpp_2m", nfe=20, x_T=x_T, progress=False).samples
    assert torch.allclose(a, b, atol=1e-8)


def test_an_eps_network_at_alpha_zero_is_a_clear_error():
    model = sk.ScoreModel.from_eps(lambda x, t: x, RF, (2,))
    with pytest.raises(sk.NonFiniteError, match=r"x0 is undefined where alpha_t = 0.*flow"):
        model.predict(torch.zeros(2, 2), 1.0)
    assert torch.isfinite(model.predict(torch.zeros(2, 2), 0.5).x0).all()


def test_bad_time_convention_is_a_clear_error():
    with pytest.raises(ValueError, match="time_convention='noise_at_2'.*noise_at_0"):
        sk.ScoreModel.from_flow(lambda x, t: x, RF, (2,), time_convention="noise_at_2")


def test_log_likelihood_under_rectified_flow_matches_the_exact_density_at_t_min():
    model = ring2d().score_model(RF)
    x = ring2d().sample(16, torch.Generator().manual_seed(1))
    ll = sk.log_likelihood(model, x, estimator="exact", rtol=1e-7, atol=1e-7)
    exact = ring2d().noised_log_prob(x, *RF.marginal(torch.tensor(RF.t_min, dtype=f64)))
    assert torch.allclose(ll.log_prob, exact, atol=2e-3)


# --- the shift schedule option ----------------------------------------------------------------------
def test_shift_on_rectified_flow_is_sd3s_formula_with_the_ends_pinned():
    solver = sk.get_solver("ode_euler", schedule="uniform", schedule_options={"shift": 3.0})
    from samplekit.timegrid import make_grid

    ts = make_grid(solver, MIX.score_model(RF), 10)
    plain = torch.linspace(1.0, RF.t_min, 11, dtype=f64)
    expect = 3.0 * plain / (1 + 2.0 * plain)
    assert ts[0] == 1.0 and ts[-1] == RF.t_min
    assert torch.allclose(ts[1:-1], expect[1:-1], atol=1e-14)


def test_a_models_own_shift_is_the_default_and_the_solvers_option_wins():
    """A model loaded from SD3's FlowMatchEuler scheduler carries shift=3: sampling it with any schedule uses it."""
    from samplekit.timegrid import make_grid

    model = MIX.score_model(RF)
    model.schedule_options = {"shift": 3.0}
    given = make_grid(
        sk.get_solver("ode_euler", schedule="uniform", schedule_options={"shift": 3.0}), MIX.score_model(RF), 10
    )
    assert torch.equal(make_grid(sk.get_solver("ode_euler", schedule="uniform"), model, 10), given)
    off = make_grid(sk.get_solver("ode_euler", schedule="uniform", schedule_options={"shift": 1.0}), model, 10)
    assert torch.allclose(off, torch.linspace(1.0, RF.t_min, 11, dtype=f64), atol=1e-14)


def test_shift_on_another_sde_moves_the_log_snr_by_log_shift():
    from samplekit.timegrid import make_grid

    sde = sk.VPSDE()
    solver = sk.get_solver("ode_euler", schedule="uniform", schedule_options={"shift": 2.0})
    ts = make_grid(solver, MIX.score_model(sde), 8)
    plain = torch.linspace(sde.T, sde.t_min, 9, dtype=f64)
    assert torch.allclose(sde.log_snr(ts[1:-1]), sde.log_snr(plain[1:-1]) - math.log(2.0), atol=1e-9)


@pytest.mark.parametrize("shift", [0.0, -1.0, float("nan"), "3"])
def test_a_bad_shift_is_a_clear_error_before_any_network_call(shift):
    model = MIX.score_model(RF)
    with pytest.raises(sk.SolverError, match="shift="):
        sk.sample(model, "ode_euler", nfe=10, num_samples=4, progress=False, schedule_options={"shift": shift})
    assert model.nfe == 0


@pytest.mark.parametrize("schedule", ["uniform", "karras", "logsnr", "quadratic"])
def test_every_builtin_schedule_gives_a_grid_from_T_on_rectified_flow(schedule):
    from samplekit.timegrid import make_grid

    ts = make_grid(sk.get_solver("ode_euler", schedule=schedule), MIX.score_model(RF), 12)
    assert ts[0] == 1.0 and ts[-1] == RF.t_min and bool((ts[1:] < ts[:-1]).all())
