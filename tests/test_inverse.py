"""Conditioning on linear observations against exact answers.

The exact posterior of a Gaussian-mixture prior under y = A x + tau n is a Gaussian mixture
(samplekit.posterior); the observation classes decouple A in an orthonormal basis; the
conditioning methods are measured against the exact posterior.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import samplekit as sk
from samplekit.bench.metrics import sliced_wasserstein
from samplekit.posterior import linear_gaussian_posterior, observation_posterior
from samplekit.solver import Solver, SolverError
from samplekit.targets import gmm16_full
from solver_picks import fixed_step, label, pick

C = sk.conditioning
SDE = sk.VPSDE()
G64 = dict(dtype=torch.float64)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def floor_and_reference(posterior, n, sets=4):
    refs = [posterior.sample(n, generator=gen(200 + i)) for i in range(sets)]
    return sum(sliced_wasserstein(refs[i], refs[i + 1]) for i in range(sets - 1)) / (sets - 1), refs[0]


# --- observations: the orthonormal decoupling --------------------------------------------------
def observations(seed):
    g = gen(seed)
    mask = torch.rand(2, 3, 3, generator=g) < 0.5
    mask[0, 0, 0] = True
    A = torch.randn(3, 6, generator=g, dtype=torch.float64)
    return [
        C.Inpainting(mask, torch.randn(2, 3, 3, generator=g, **G64)),
        C.Colorization(torch.rand(3, generator=g, **G64) + 0.1, torch.randn(2, 2, generator=g, **G64), shape=(3, 2, 2)),
        C.DenseObservation(A, torch.randn(3, generator=g, **G64)),
        C.DenseObservation(torch.cat([A, A[:1]]), torch.randn(4, generator=g, **G64)),  # rank-deficient
    ]


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_split_merge_is_an_orthonormal_change_of_basis(seed):
    for obs in observations(seed):
        x = torch.randn(5, *obs.shape, generator=gen(seed + 1), **G64)
        z_o, z_u = obs.split(x)
        assert z_o.shape == (5, obs.r) and z_u.shape == (5, obs.d - obs.r)
        torch.testing.assert_close(obs.merge(z_o, z_u), x)
        torch.testing.assert_close(z_o.square().sum(1) + z_u.square().sum(1), x.flatten(1).square().sum(1))
        # the observed coordinates carry A x:  A merge(ybar, anything) = A (projection of y's preimage)
        x_fit = obs.merge(obs.ybar.expand(5, -1), z_u)
        A = obs.matrix()
        if isinstance(obs, C.DenseObservation) and obs.A.shape[0] > obs.r:
            y_fit = A @ torch.linalg.pinv(A) @ obs.y_vector()
        else:
            y_fit = obs.y_vector()
        torch.testing.assert_close(obs.apply(x_fit), y_fit.expand(5, -1))
        # free coordinates are invisible to A
        torch.testing.assert_close(obs.apply(obs.merge(z_o, torch.zeros_like(z_u))), obs.apply(x))


def test_structured_observations_agree_with_the_dense_svd():
    for obs in observations(3)[:2]:
        dense = C.DenseObservation(obs.matrix(), obs.y_vector(), shape=obs.shape)
        torch.testing.assert_close(dense.singular_values.sort().values, obs.singular_values.sort().values)
        x = torch.randn(4, *obs.shape, **G64)
        # same observed subspace: the projections onto it agree
        p1 = obs.merge(obs.split(x)[0], torch.zeros_like(obs.split(x)[1]))
        p2 = dense.merge(dense.split(x)[0], torch.zeros_like(dense.split(x)[1]))
        torch.testing.assert_close(p1, p2)


def test_observation_errors_are_named():
    with pytest.raises(ValueError, match="no known pixel"):
        C.Inpainting(torch.zeros(4, dtype=torch.bool), torch.zeros(4))
    with pytest.raises(ValueError, match="mask order"):
        C.Inpainting(torch.tensor([True, False, True]), torch.zeros(5))
    with pytest.raises(ValueError, match="noise_std"):
        C.Inpainting(torch.tensor([True, False]), torch.zeros(2), noise_std=-1)
    with pytest.raises(ValueError, match="one weight per channel"):
        C.Colorization([1.0, 1.0], torch.zeros(2, 2), shape=(3, 2, 2))
    with pytest.raises(ValueError, match="gray image"):
        C.Colorization([1.0, 1.0, 1.0], torch.zeros(3, 3), shape=(3, 2, 2))
    with pytest.raises(ValueError, match="one value per row"):
        C.DenseObservation(torch.ones(2, 3), torch.zeros(3))
    obs = C.Inpainting(torch.tensor([True, False, False]), torch.zeros(3))
    with pytest.raises(ValueError, match="sample shape"):
        C.observed_score(sk.GaussianMixture([1.0], [[0.0, 0.0]], [[1.0, 1.0]]).score_model(SDE), obs)


# --- the exact posterior -----------------------------------------------------------------------------
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), m=st.integers(1, 4), tau=st.floats(0.05, 2.0))
def test_posterior_is_bayes_rule(seed, m, tau):
    """log p(x | y) - log p(x) - log N(y; A x, tau^2) is the same constant for every x."""
    g = gen(seed)
    prior = sk.GaussianMixture(
        torch.rand(3, generator=g) + 0.2,
        2 * torch.randn(3, 5, generator=g, **G64),
        torch.rand(3, 5, generator=g, **G64) + 0.1,
    )
    A = torch.randn(m, 5, generator=g, **G64)
    y = torch.randn(m, generator=g, **G64) * 3
    post = linear_gaussian_posterior(prior, A, y, tau).mixture()
    x = 2 * torch.randn(50, 5, generator=g, **G64)
    log_lik = -0.5 * ((x @ A.T - y) ** 2).sum(1) / tau**2
    c = post.log_prob(x) - prior.log_prob(x) - log_lik
    scale = 1.0 + log_lik.abs().max() + prior.log_prob(x).abs().max()  # round-off grows with the terms
    torch.testing.assert_close(c, c.mean().expand(50), rtol=0, atol=float(1e-10 * scale))


def test_noise_free_posterior_is_the_limit_and_lives_on_the_constraint():
    prior = gmm16_full()
    A = torch.randn(4, 16, generator=gen(1), **G64)
    y = A @ prior.sample(1, generator=gen(2))[0]
    exact = linear_gaussian_posterior(prior, A, y, 0.0)
    near = linear_gaussian_posterior(prior, A, y, 1e-6)
    torch.testing.assert_close(exact.weights, near.weights, atol=1e-6, rtol=0)
    torch.testing.assert_close(exact.means, near.means, atol=1e-6, rtol=0)
    x = exact.sample(100, generator=gen(3))
    torch.testing.assert_close(x @ A.T, y.expand(100, -1), atol=1e-6, rtol=0)


def test_single_gaussian_conditioning_is_the_textbook_formula():
    S = torch.tensor([[2.0, 0.8], [0.8, 1.0]], **G64)
    prior = sk.GaussianMixture([1.0], [[1.0, -1.0]], S[None])
    post = linear_gaussian_posterior(prior, torch.tensor([[1.0, 0.0]], **G64), torch.tensor([3.0], **G64))
    # x2 | x1 = 3  ~  N(-1 + 0.8/2 (3 - 1), 1 - 0.8^2/2)
    torch.testing.assert_close(post.means[0], torch.tensor([3.0, -0.2], **G64))
    torch.testing.assert_close(post.covariances[0, 1, 1], torch.tensor(1 - 0.32, **G64))


# --- the methods against the exact posterior ---------------------------------------------------------
def independent_case():
    """Observed and free coordinates independent under the prior: replacement is exact here."""
    prior = sk.GaussianMixture([1.0, 2.0], [[1.0, -2.0, 0.0], [1.0, 2.0, 1.0]], [[0.5, 0.3, 0.2], [0.5, 0.2, 0.4]])
    return prior, C.Inpainting(torch.tensor([True, False, False]), torch.tensor([1.3, 0.0, 0.0]))


def biased_case():
    """Two correlated modes; x_1 = 1 is observed.  The posterior is almost all mode (3, 3) with
    x_2 ~ 1.1; replacement commits x_2 to a mode before the noisy x_1 tells which: visible bias."""
    prior = sk.GaussianMixture([1.0, 1.0], [[-3.0, -3.0], [3.0, 3.0]], [[[1, 0.95], [0.95, 1]]] * 2)
    return prior, C.Inpainting(torch.tensor([True, False]), torch.tensor([1.0, 0.0]))


def run(method, prior, obs, solver, nfe, n, seed=0):
    model = prior.score_model(SDE)
    if method == "observed_score":
        return sk.sample(
            C.observed_score(model, obs),
            solver=solver,
            nfe=nfe,
            num_samples=n,
            seed=seed,
            progress=False,
            dtype=torch.float64,
        )
    hook = C.replacement(solver, obs) if method == "replacement" else C.resample(solver, obs, jumps=4)
    return sk.sample(model, solver=hook, nfe=nfe, num_samples=n, seed=seed, progress=False, dtype=torch.float64)


@pytest.mark.parametrize(
    "method,stochastic",
    [
        ("replacement", True),
        ("replacement", False),
        ("resample", True),
        ("observed_score", True),
        ("observed_score", False),
    ],
)
def test_every_method_is_exact_when_the_coordinates_are_independent(method, stochastic):
    prior, obs = independent_case()
    solver = pick(stochastic)
    floor, ref = floor_and_reference(observation_posterior(prior, obs), 2000)
    res = run(method, prior, obs, solver, 800, 2000)
    sw = sliced_wasserstein(res.samples, ref)
    assert res.nfe <= 800
    assert sw < 1.5 * floor, f"{method} with {label(solver)}: SW2 {sw:.4f} vs floor {floor:.4f}"


@pytest.mark.parametrize("noise_std", [0.0, 0.3])
def test_dense_observation_is_exact_for_an_isotropic_prior(noise_std):
    """An isotropic Gaussian prior is isotropic in every orthonormal basis, so the observed and free
    coordinates of any A are independent: the general linear case must then hit the exact posterior
    (with noise, the surrogate N(ybar, tau^2) of the observed coordinates is exact only for a flat
    prior, so the noisy check compares against the flat-prior answer on the observed part)."""
    prior = sk.GaussianMixture([1.0], [[1.0, -1.0, 0.5, 0.0]], [[0.6] * 4])
    A = torch.tensor([[1.0, 2.0, 0.0, -1.0], [0.0, 1.0, 1.0, 1.0]], **G64)
    obs = C.DenseObservation(A, torch.tensor([0.5, 1.5], **G64), noise_std=noise_std)
    res = run("replacement", prior, obs, "euler_maruyama", 400, 2000)
    if noise_std == 0.0:
        floor, ref = floor_and_reference(observation_posterior(prior, obs), 2000)
        sw = sliced_wasserstein(res.samples, ref)
        assert sw < 1.5 * floor, f"SW2 {sw:.4f} vs floor {floor:.4f}"
    else:  # observed coordinates ~ N(ybar, tau^2) (the documented surrogate), free ones exact
        z_o, z_u = obs.split(res.samples)
        torch.testing.assert_close(z_o.mean(0), obs.ybar, atol=0.05, rtol=0)
        torch.testing.assert_close(z_o.std(0), obs.tau, atol=0.03, rtol=0)
        _, prior_free = obs.split(prior.means)
        torch.testing.assert_close(z_u.mean(0), prior_free[0], atol=0.06, rtol=0)


def test_resampling_corrects_the_replacement_bias():
    prior, obs = biased_case()
    floor, ref = floor_and_reference(observation_posterior(prior, obs), 2000)
    plain = sliced_wasserstein(run("replacement", prior, obs, "euler_maruyama", 400, 2000).samples, ref)
    resampled = sliced_wasserstein(run("resample", prior, obs, "euler_maruyama", 400, 2000).samples, ref)
    assert plain > 10 * floor  # the bias is visible
    assert resampled < 0.5 * plain, f"resample {resampled:.4f} vs replacement {plain:.4f} (floor {floor:.4f})"


def test_noisy_observation_recovers_the_flat_prior_law_of_the_observed_coordinates():
    """With tau > 0 the observed coordinate ends at N(ybar, tau^2) (documented surrogate), any method."""
    prior = sk.GaussianMixture([1.0], [[0.0, 0.0]], [[4.0, 1.0]])
    obs = C.Inpainting(torch.tensor([True, False]), torch.tensor([1.0, 0.0]), noise_std=0.5)
    for method in ("replacement", "observed_score"):
        x = run(method, prior, obs, "euler_maruyama", 400, 4000).samples
        assert abs(float(x[:, 0].mean()) - 1.0) < 0.05 and abs(float(x[:, 0].std()) - 0.5) < 0.03


def test_colorization_samples_match_the_gray_image_and_the_posterior():
    """A prior whose variance depends on the pixel only is isotropic across channels, so gray and
    chroma (the rotated channels) are independent: replacement is exact, and the gray image is met."""
    g = gen(5)
    var = (torch.rand(1, 2, 2, generator=g, **G64) * 0.5 + 0.2).expand(3, 2, 2).flatten()
    prior = sk.GaussianMixture([1.0], torch.randn(1, 12, generator=g, **G64), var[None])
    net = prior.score_model(SDE).net
    model = sk.ScoreModel.from_score(lambda x, t: net(x.flatten(1), t).view_as(x), SDE, (3, 2, 2))
    truth = prior.sample(1, generator=g)[0].reshape(3, 2, 2)
    weights = torch.tensor([0.299, 0.587, 0.114], **G64)
    obs = C.Colorization(weights, torch.einsum("c,chw->hw", weights, truth), shape=(3, 2, 2))
    res = sk.sample(
        model,
        solver=C.replacement("euler_maruyama", obs),
        nfe=400,
        num_samples=2000,
        seed=0,
        progress=False,
        dtype=torch.float64,
    )
    gray = torch.einsum("c,bchw->bhw", weights, res.samples)
    _, sigma_min = SDE.marginal(torch.tensor(SDE.t_min, **G64))  # the last replacement noises at t_min
    assert (gray - obs.gray.view(2, 2)).abs().max() < 5 * sigma_min * weights.norm() + 0.01
    floor, ref = floor_and_reference(observation_posterior(prior, obs), 2000)
    sw = sliced_wasserstein(res.samples, ref)
    assert sw < 1.5 * floor, f"SW2 {sw:.4f} vs floor {floor:.4f}"


# --- every solver can use them -----------------------------------------------------------------------
def _all_vp_solvers():
    """Every registered solver that handles VP SDEs and samples the target (not a fixed-score baseline)."""
    return [
        c
        for c in sk.available("solver")
        if "vp" in (c.info.get("sde_families") or ["vp"]) and c.info.get("samples_target", True)
    ]


@pytest.mark.parametrize("info", _all_vp_solvers(), ids=lambda c: c.name)
def test_observed_score_runs_with_every_registered_solver(info):
    prior, obs = independent_case()
    # an adaptive solver takes nfe as a cap on what its default tolerances spend
    res = run("observed_score", prior, obs, info.name, 5000 if info.info.get("adaptive") else 200, 200)
    # the observed coordinate follows its noised law N(alpha ybar, sigma^2) (exactly for an exact solver; an SDE
    # solver's last step adds noise of order g sqrt(h), so the check is on the mean and a loose spread)
    assert torch.isfinite(res.samples).all()
    assert abs(float(res.samples[:, 0].mean()) - 1.3) < 0.02 and float(res.samples[:, 0].std()) < 0.1


@pytest.mark.parametrize("solver", fixed_step(True) + fixed_step(False))
def test_step_hooks_run_with_every_fixed_step_solver(solver):
    prior, obs = independent_case()
    for method in ("replacement", "resample"):
        res = run(method, prior, obs, solver, 200, 100)
        assert res.nfe <= 200 and torch.isfinite(res.samples).all()
        assert (res.samples[:, 0] - 1.3).abs().max() < 0.05


def test_resample_budget_and_adaptive_error():
    prior, obs = independent_case()
    model = prior.score_model(SDE)
    hook = C.resample("euler_maruyama", obs, jumps=4)
    res = sk.sample(model, solver=hook, nfe=103, num_samples=10, progress=False)
    assert res.nfe == 100 and res.n_steps == 25

    class Adaptive(Solver):
        name, adaptive = "toy_adaptive", True

    with pytest.raises(SolverError, match="observed_score"):
        C.replacement(Adaptive(), obs)
    with pytest.raises(SolverError, match="jumps"):
        C.resample("euler_maruyama", obs, jumps=0)
    with pytest.raises(ValueError, match="sample shape"):
        other = sk.GaussianMixture([1.0], [[0.0, 0.0]], [[1.0, 1.0]]).score_model(SDE)
        sk.sample(other, solver=C.replacement("euler_maruyama", obs), nfe=10, num_samples=2, progress=False)


def test_same_seed_same_samples():
    prior, obs = biased_case()
    a = run("resample", prior, obs, "euler_maruyama", 40, 50, seed=3).samples
    b = run("resample", prior, obs, "euler_maruyama", 40, 50, seed=3).samples
    assert torch.equal(a, b) and math.isfinite(float(a.sum()))
