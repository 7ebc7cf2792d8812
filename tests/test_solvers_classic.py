"""The classic fixed-step solvers (ode_euler, ode_heun, ddpm, ddim, pc, annealed_langevin, langevin)
against exact answers: fitted orders against a tight dopri5 solution of the same probability-flow ODE,
weak convergence of the stochastic ones to the exact mixture moments, exact identities between
updates (textbook DDPM; ddim eta=1 = ddpm; pc without corrector = its predictor), the exact stationary
variance of unadjusted Langevin on a Gaussian, and bad input.  (The SW2-vs-noise-floor check on the
2-D ring runs for every registered solver in tests/test_every_solver.py.)
"""

from __future__ import annotations

import pytest
import torch

import samplekit as sk
from exact_checks import fitted_slope
from samplekit.noise import NoiseSource
from samplekit.reverse import probability_flow_drift
from samplekit.schedules import uniform

f64 = torch.float64
SDES = {"vp": sk.VPSDE, "ve": sk.VESDE}
# smooth: two broad components, so the probability-flow ODE is smooth down to t_min
SMOOTH = sk.GaussianMixture(
    [0.3, 0.7], [[-1.5, 0.5], [1.0, -0.5]], [[[0.3, 0.1], [0.1, 0.2]], [[0.4, 0.0], [0.0, 0.25]]]
)


def run(model, solver, nfe, **kw):
    kw.setdefault("seed", 0)
    return sk.sample(model, solver, nfe=nfe, dtype=f64, progress=False, **kw)


# --- deterministic: measured order against dopri5 -------------------------------------------------
@pytest.mark.parametrize("family", ["vp", "ve"])
@pytest.mark.parametrize(
    "solver,kw,order,per_step", [("ode_euler", {}, 1.0, 1), ("ode_heun", {}, 2.0, 2), ("ddim", {"eta": 0.0}, 1.0, 1)]
)
def test_deterministic_solver_converges_at_its_order(solver, kw, order, per_step, family):
    from torchdiffeq import odeint

    sde = SDES[family]()
    model = SMOOTH.score_model(sde)
    x_T = sde.prior_std * torch.randn(16, 2, generator=torch.Generator().manual_seed(1), dtype=f64)
    ts = torch.tensor([sde.T, sde.t_min], dtype=f64)
    # step_t: dopri5 must land on t_min, never evaluate past it (the marginals are undefined below t = 0)
    exact = odeint(
        lambda t, x: probability_flow_drift(model, x, t)[0], x_T, ts, rtol=1e-11, atol=1e-11, options={"step_t": ts[1:]}
    )[-1]
    steps = [16, 32, 64, 128] if family == "vp" else [64, 128, 256, 512]  # VE: x_T ~ 50, later asymptotic
    errors = []
    for n in steps:
        res = run(model, solver, n * per_step, x_T=x_T, **kw)
        assert res.nfe == n * per_step
        errors.append(float((res.samples - exact).norm(dim=1).max()))
    slope = fitted_slope(steps, errors)
    assert abs(slope - order) <= 0.25, f"{solver} on {family}: fitted order {slope:.2f}, errors {errors}"


# --- stochastic: weak convergence to the exact moments --------------------------------------------
def moment_error(x: torch.Tensor) -> float:
    return float((x.mean(0) - SMOOTH.mean).norm() + (torch.cov(x.T) - SMOOTH.covariance).norm())


@pytest.mark.parametrize(
    "solver,kw,per_step,family",
    [
        ("euler_maruyama", {}, 1, "vp"),
        ("ddpm", {}, 1, "vp"),
        ("ddpm", {}, 1, "ve"),
        ("ddim", {"eta": 1.0}, 1, "vp"),
        ("ddim", {"eta": 1.0}, 1, "ve"),
        ("pc", {}, 2, "vp"),
        ("pc", {}, 2, "ve"),
        ("pc", {"predictor": "euler_maruyama"}, 2, "vp"),
    ],
)
def test_stochastic_solver_moment_error_shrinks_with_nfe(solver, kw, per_step, family):
    """Mean + covariance error against the exact mixture moments, 20000 samples (noise ~0.02), same seed."""
    model = SMOOTH.score_model(SDES[family]())
    errors = [moment_error(run(model, solver, n * per_step, num_samples=20000, **kw).samples) for n in (4, 16, 64)]
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[2] < 0.6 * errors[1] and errors[2] < 0.25, errors


# --- exact identities -----------------------------------------------------------------------------
def test_ddpm_on_vp_with_a_uniform_grid_is_the_textbook_update():
    """Ho et al.: beta_i = 1 - abar_t / abar_s, x_s = (x_t - beta_i eps / sqrt(1 - abar_t)) / sqrt(1 - beta_i)
    + sqrt(beta_tilde) z, beta_tilde = beta_i (1 - abar_s) / (1 - abar_t), along the whole chain."""
    sde, n, batch = sk.VPSDE(), 12, 64
    model = SMOOTH.score_model(sde)
    x_T = torch.randn(batch, 2, generator=torch.Generator().manual_seed(3), dtype=f64)
    got = run(model, "ddpm", n, x_T=x_T, seed=7).samples
    ts, noise, x = uniform(sde, n), NoiseSource(7, batch), x_T.clone()
    abar = sde.marginal(ts)[0] ** 2
    for i in range(n):
        beta = 1 - abar[i] / abar[i + 1]
        eps = -torch.sqrt(1 - abar[i]) * SMOOTH.noised_score(x, abar[i].sqrt(), torch.sqrt(1 - abar[i]))
        beta_tilde = beta * (1 - abar[i + 1]) / (1 - abar[i])
        x = (x - beta * eps / torch.sqrt(1 - abar[i])) / torch.sqrt(1 - beta) + beta_tilde.sqrt() * noise.randn_like(x)
    assert torch.allclose(got, x, rtol=1e-10, atol=1e-10), (got - x).abs().max()


@pytest.mark.parametrize("family", ["vp", "ve"])
def test_ddim_with_eta_one_is_ddpm_and_pc_without_corrector_is_its_predictor(family):
    model = SMOOTH.score_model(SDES[family]())
    x_T = model.sde.prior_std * torch.randn(32, 2, generator=torch.Generator().manual_seed(4), dtype=f64)
    ddpm = run(model, "ddpm", 10, x_T=x_T).samples
    assert torch.allclose(run(model, "ddim", 10, x_T=x_T, eta=1.0, schedule="uniform").samples, ddpm, atol=1e-10)
    assert torch.allclose(
        run(model, "pc", 10, x_T=x_T, predictor="ancestral", corrector="none").samples, ddpm, atol=1e-12
    )
    em = run(model, "euler_maruyama", 10, x_T=x_T).samples
    assert torch.allclose(
        run(model, "pc", 10, x_T=x_T, predictor="euler_maruyama", corrector="none").samples, em, atol=1e-12
    )


def test_pc_spends_one_predictor_and_n_corrector_calls_a_step():
    model = SMOOTH.score_model(sk.VPSDE())
    res = run(model, "pc", 14, num_samples=8, n_corrector=3)
    assert res.n_steps == 3 and res.nfe == model.nfe == 12
    assert run(model, "pc", 14, num_samples=8, corrector="none").nfe == 14
    res = run(model, "annealed_langevin", 23, num_samples=8, n_steps_each=4)
    assert res.n_steps == 5 and res.nfe == 20


def test_langevin_reaches_the_exact_ula_stationary_variance_of_a_gaussian():
    """Unadjusted Langevin on N(m, V) has stationary law N(m, V / (1 - e / (2 V))) (exact, per coordinate)."""
    v, e = 0.5, 0.1
    target = sk.GaussianMixture([1.0], [[1.0, -2.0]], [[v, v]])
    sde = sk.VPSDE()
    model = target.score_model(sde)
    alpha, sigma = sde.marginal(torch.tensor(sde.t_min, dtype=f64))
    V = float(alpha**2 * v + sigma**2)
    x = run(model, "langevin", 300, num_samples=20000, step_size=e).samples
    expected = V / (1 - e / (2 * V))
    assert torch.allclose(x.mean(0), alpha * target.means[0], atol=0.03)
    assert torch.allclose(x.var(0), torch.full((2,), expected, dtype=f64), rtol=0.04)
    assert abs(expected - V) / V > 0.1  # the test tells the biased chain from the exact law


# --- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "solver,options,match",
    [
        ("ode_heun", {"eta": 0.5}, "has no option 'eta'"),
        ("ddim", {"eta": -0.1}, "eta"),
        ("ddim", {"eta": 1.5}, "eta"),
        ("pc", {"predictor": "heun"}, "reverse_diffusion, euler_maruyama, ancestral"),
        ("pc", {"corrector": "hmc"}, "langevin, none"),
        ("pc", {"n_corrector": -1}, "n_corrector"),
        ("pc", {"snr": 0.0}, "snr"),
        ("annealed_langevin", {"n_steps_each": 0}, "n_steps_each"),
        ("annealed_langevin", {"step_lr": -1e-5}, "step_lr"),
        ("langevin", {"step_size": float("nan")}, "step_size"),
    ],
)
def test_bad_options_are_refused_by_name(solver, options, match):
    model = SMOOTH.score_model(sk.VPSDE())
    with pytest.raises(sk.SolverError, match=match):
        run(model, solver, 20, num_samples=2, **options)
    assert model.nfe == 0


@pytest.mark.parametrize(
    "solver,nfe,options",
    [
        ("ode_heun", 1, {}),
        ("pc", 2, {"n_corrector": 2}),
        ("annealed_langevin", 4, {}),
        ("ddpm", 1, {"denoise_final": True}),
    ],
)
def test_a_budget_too_small_names_nfe_before_any_call(solver, nfe, options):
    model = SMOOTH.score_model(sk.VESDE())
    with pytest.raises(sk.SolverError, match=f"nfe={nfe} is too small"):
        run(model, solver, nfe, num_samples=2, **options)
    assert model.nfe == 0
