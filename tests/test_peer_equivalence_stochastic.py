"""The stochastic solvers against implementations nobody here wrote, and against exact laws.

1. Peer equivalence, step by step, float64, on an exact Gaussian mixture: same x_T, same grid, same
   noise draws (samplekit's draws are recorded by a NoiseSource subclass and replayed to the peer's
   ``noise_sampler``), max abs difference <= 1e-10.  k-diffusion's samplers take a denoiser D(y, s~) in
   the scaled variable y = x / alpha with s~ = sigma / alpha; on VE/EDM (alpha = 1) that is x itself,
   on VP the test converts x <-> y, so the general (alpha, sigma) form of each solver is proven too.
2. The exact law on a single (diagonal) Gaussian: there every solver is affine in x_T and in its noise
   draws, so the output law is Gaussian with mean and variance read off exactly by probe rows (row 0:
   x_T = prior_std e, no noise; row 1: nothing; row k + 2: only draw k set to 1).  The error of mean and
   variance against the target's must fall with NFE (weak convergence), at the fitted rate asserted.
"""

from __future__ import annotations

import pytest
import torch

import samplekit as sk
from exact_checks import fitted_slope
from peers import kdiff_trajectory, kdiffusion_sampling
from samplekit.noise import NoiseSource
from samplekit.sampling import integrate, make_grid
from samplekit.schedules import karras
from samplekit_fast.dpm_2_ancestral import DPM2Ancestral
from samplekit_fast.dpmpp_2s_ancestral import DPMSolverPP2SAncestral
from samplekit_fast.dpmpp_3m_sde import DPMSolverPP3MSDE
from samplekit_fast.dpmpp_sde import DPMSolverPPSDE
from samplekit_fast.er_sde import ERSDE
from samplekit_fast.euler_ancestral import EulerAncestral
from samplekit_fast.lcm import LCM
from samplekit_fast.restart import Restart, Restarts
from samplekit_fast.sa_solver import SASolver

f64 = torch.float64
MIX = sk.GaussianMixture([0.3, 0.7], [[-1.5, 0.5], [1.0, -0.5]], [[[0.4, 0.1], [0.1, 0.3]], [[0.6, -0.2], [-0.2, 0.5]]])
SDES = {"edm": sk.EDMSDE(), "ve": sk.VESDE(), "vp": sk.VPSDE()}
GAUSS = sk.GaussianMixture([1.0], [[1.0, -0.5]], [[0.5, 2.0]])  # diagonal: coordinates decouple


class Recording(NoiseSource):
    """A NoiseSource that keeps every draw, to replay them to a peer."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.recorded: list[torch.Tensor] = []

    def randn_like(self, x):
        z = super().randn_like(x)
        self.recorded.append(z)
        return z


def run_samplekit(solver, model, x_T, ts, seed=0):
    """The trajectory after each step, and the draws made."""
    noise, traj = Recording(seed, x_T.shape[0]), []
    integrate(solver, model, x_T.clone(), ts, noise, callback=lambda info: traj.append(info.x.clone()))
    return traj, noise.recorded


def replay(draws):
    """A k-diffusion noise_sampler returning samplekit's draws in order."""
    queue = list(draws)
    return lambda sigma, sigma_next: queue.pop(0)


def peer_difference(solver, sampler_name, sde_name, n_steps=12, kd_options=None, noise_sampler=replay):
    sde = SDES[sde_name]
    model = MIX.score_model(sde)
    x_T = sde.prior_std * torch.randn((16, 2), generator=torch.Generator().manual_seed(3), dtype=f64)
    ts = karras(sde, n_steps)
    ours, draws = run_samplekit(solver, model, x_T, ts)
    options = dict(kd_options or {})
    replayed = noise_sampler(draws)
    if replayed is not None:
        options["noise_sampler"] = replayed
    theirs = kdiff_trajectory(getattr(kdiffusion_sampling(), sampler_name), model, x_T, ts, **options)
    assert len(ours) == len(theirs) == n_steps
    return max(float((a - b).abs().max()) for a, b in zip(ours, theirs))


# --- exact law on a single Gaussian ---------------------------------------------------------------
class Probe(NoiseSource):
    """Draw k is 1 in row k + 2 and 0 elsewhere: each output row isolates one direction of the affine map."""

    def __init__(self, rows: int) -> None:
        super().__init__(0, rows)
        self.k = 0

    def randn_like(self, x):
        z = torch.zeros_like(x)
        assert self.k + 2 < x.shape[0], "too few probe rows for the draws this solver made"
        z[self.k + 2] = 1.0
        self.k += 1
        return z


def exact_law(solver, sde, nfe):
    """(mean, variance) per coordinate of the solver's output law on GAUSS, exactly."""
    model = GAUSS.score_model(sde)
    rows = 2 + 3 * nfe  # at most 3 draws per network call
    x_T = torch.zeros((rows, 2), dtype=f64)
    x_T[0] = sde.prior_std
    plan = solver.plan(nfe)
    ts = make_grid(solver, model, plan.n_steps)
    out = integrate(solver, model, x_T, ts, Probe(rows), plan=plan)
    c = out[1]
    var = (out[0] - c) ** 2 + ((out[2:] - c) ** 2).sum(0)
    return c, var


def weak_errors(solver, sde, nfes):
    true_mean, true_var = GAUSS.means[0], GAUSS.covariances[0]
    errs = []
    for nfe in nfes:
        mean, var = exact_law(solver, sde, nfe)
        errs.append(float((mean - true_mean).abs().max() + (var - true_var).abs().max()))
    return errs


def assert_weak_convergence(solver, sde_name, nfes, min_slope):
    errs = weak_errors(solver, SDES[sde_name], nfes)
    assert all(b < a for a, b in zip(errs, errs[1:])), f"{solver.name}: weak error not falling: {errs}"
    slope = fitted_slope(nfes, errs)
    assert slope >= min_slope, f"{solver.name} on {sde_name}: weak slope {slope:.2f} < {min_slope}, errors {errs}"
    return slope, errs


# --- euler_ancestral ------------------------------------------------------------------------------


@pytest.mark.parametrize("sde_name", ["edm", "ve", "vp"])
@pytest.mark.parametrize("eta,s_noise", [(1.0, 1.0), (0.6, 0.8)])
def test_euler_ancestral_matches_kdiffusion(sde_name, eta, s_noise):
    diff = peer_difference(
        EulerAncestral(eta=eta, s_noise=s_noise),
        "sample_euler_ancestral",
        sde_name,
        kd_options={"eta": eta, "s_noise": s_noise},
    )
    assert diff <= 1e-10


@pytest.mark.parametrize("sde_name", ["vp", "edm"])
def test_euler_ancestral_weak_convergence(sde_name):
    assert_weak_convergence(EulerAncestral(), sde_name, [16, 32, 64, 128], min_slope=0.75)


# --- deterministic limits: eta = 0 (or s_noise = 0) instances declare, and reach, their ODE order ---
SMOOTH = sk.GaussianMixture(
    [0.4, 0.6], [[-1.0, 0.5], [1.0, -0.5]], [[[0.8, 0.2], [0.2, 0.6]], [[0.5, 0.0], [0.0, 0.9]]]
)


@pytest.fixture(scope="module")
def pf_reference():
    sde = sk.VPSDE()
    model = SMOOTH.score_model(sde)
    x_T = torch.randn((32, 2), generator=torch.Generator().manual_seed(0), dtype=f64)
    return model, x_T, sk.decode(model, x_T, method="dopri5", rtol=1e-11, atol=1e-11)


def assert_ode_order(pf_reference, solver, steps):
    model, x_T, exact = pf_reference
    caps = solver.capabilities()
    assert not caps.stochastic
    errors = []
    for n in steps:
        out = integrate(solver, model, x_T.clone(), make_grid(solver, model, n), NoiseSource(0, x_T.shape[0]))
        errors.append(float((out - exact).norm(dim=1).max()))
    slope = fitted_slope(steps, errors)
    assert caps.order - 0.3 <= slope <= caps.order + 0.8, (
        f"{solver!r}: declared {caps.order}, fitted {slope:.2f} {errors}"
    )
    print(f"{solver!r}: fitted order {slope:.2f}")
    return slope


def test_euler_ancestral_eta0_is_deterministic_first_order(pf_reference):
    assert EulerAncestral().capabilities().stochastic
    assert_ode_order(pf_reference, EulerAncestral(eta=0.0), [32, 64, 128, 256])


# --- dpm_2_ancestral ------------------------------------------------------------------------------


@pytest.mark.parametrize("sde_name", ["edm", "ve", "vp"])
@pytest.mark.parametrize("eta,s_noise", [(1.0, 1.0), (0.6, 0.8)])
def test_dpm_2_ancestral_matches_kdiffusion(sde_name, eta, s_noise):
    diff = peer_difference(
        DPM2Ancestral(eta=eta, s_noise=s_noise),
        "sample_dpm_2_ancestral",
        sde_name,
        kd_options={"eta": eta, "s_noise": s_noise},
    )
    assert diff <= 1e-10


@pytest.mark.parametrize("sde_name", ["vp", "edm"])
def test_dpm_2_ancestral_weak_convergence(sde_name):
    assert_weak_convergence(DPM2Ancestral(), sde_name, [16, 32, 64, 128], min_slope=0.75)


def test_dpm_2_ancestral_eta0_is_deterministic_second_order(pf_reference):
    assert_ode_order(pf_reference, DPM2Ancestral(eta=0.0), [16, 32, 64, 128])


# --- dpmpp_2s_ancestral ---------------------------------------------------------------------------


@pytest.mark.parametrize("sde_name", ["edm", "ve", "vp"])
@pytest.mark.parametrize("eta,s_noise", [(1.0, 1.0), (0.6, 0.8)])
def test_dpmpp_2s_ancestral_matches_kdiffusion(sde_name, eta, s_noise):
    diff = peer_difference(
        DPMSolverPP2SAncestral(eta=eta, s_noise=s_noise),
        "sample_dpmpp_2s_ancestral",
        sde_name,
        kd_options={"eta": eta, "s_noise": s_noise},
    )
    assert diff <= 1e-10


@pytest.mark.parametrize("sde_name", ["vp", "edm"])
def test_dpmpp_2s_ancestral_weak_convergence(sde_name):
    assert_weak_convergence(DPMSolverPP2SAncestral(), sde_name, [16, 32, 64, 128], min_slope=0.75)


def test_dpmpp_2s_ancestral_eta0_is_deterministic_second_order(pf_reference):
    assert_ode_order(pf_reference, DPMSolverPP2SAncestral(eta=0.0), [16, 32, 64, 128])


# --- dpmpp_sde ------------------------------------------------------------------------------------


def brownian_replay(draws):
    """k-diffusion's BrownianTreeNoiseSampler, with the path built from samplekit's draws: each step asks
    for the normalised increment over [s~_m, s~_t] and then over [s~_s, s~_t]; the first is w_1, the second
    (W over [s~_m, s~_t] + W over [s~_s, s~_m]) / sqrt(s~_t - s~_s), the new piece from w_2."""
    queue, pending = list(draws), {}

    def sampler(sigma, sigma_next):
        if "w1" not in pending:
            pending.update(w1=queue.pop(0), first=(sigma, sigma_next))
            return pending["w1"]
        (s_t, s_m), w1 = pending.pop("first"), pending.pop("w1")
        assert float(sigma) == float(s_t)
        return (w1 * (s_t - s_m).sqrt() + queue.pop(0) * (s_m - sigma_next).sqrt()) / (s_t - sigma_next).sqrt()

    return sampler


@pytest.mark.parametrize("sde_name", ["edm", "ve", "vp"])
@pytest.mark.parametrize("eta,s_noise,r", [(1.0, 1.0, 0.5), (0.6, 0.8, 0.4)])
def test_dpmpp_sde_matches_kdiffusion(sde_name, eta, s_noise, r):
    diff = peer_difference(
        DPMSolverPPSDE(eta=eta, s_noise=s_noise, r=r),
        "sample_dpmpp_sde",
        sde_name,
        kd_options={"eta": eta, "s_noise": s_noise, "r": r},
        noise_sampler=brownian_replay,
    )
    assert diff <= 1e-10


@pytest.mark.parametrize("sde_name", ["vp", "edm"])
def test_dpmpp_sde_weak_convergence(sde_name):
    assert_weak_convergence(DPMSolverPPSDE(), sde_name, [16, 32, 64, 128], min_slope=0.75)


def test_dpmpp_sde_eta0_is_deterministic_second_order(pf_reference):
    assert_ode_order(pf_reference, DPMSolverPPSDE(eta=0.0), [16, 32, 64, 128])


def test_dpmpp_sde_refuses_a_bad_ratio():
    with pytest.raises(sk.SolverError, match="r=0.0"):
        DPMSolverPPSDE(r=0.0)


# --- dpmpp_3m_sde ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sde_name", ["edm", "ve", "vp"])
@pytest.mark.parametrize("eta,s_noise", [(1.0, 1.0), (0.0, 1.0), (0.6, 0.8)])
def test_dpmpp_3m_sde_matches_kdiffusion(sde_name, eta, s_noise):
    diff = peer_difference(
        DPMSolverPP3MSDE(eta=eta, s_noise=s_noise, lower_order_final=False),
        "sample_dpmpp_3m_sde",
        sde_name,
        kd_options={"eta": eta, "s_noise": s_noise},
    )
    assert diff <= 1e-10


@pytest.mark.parametrize("sde_name", ["vp", "edm"])
def test_dpmpp_3m_sde_weak_convergence(sde_name):
    assert_weak_convergence(DPMSolverPP3MSDE(), sde_name, [16, 32, 64, 128], min_slope=0.75)


def test_dpmpp_3m_sde_lower_order_final_keeps_the_last_long_step_from_extrapolating():
    """On a grid uniform in t (VP) the last log-SNR step is long; the default lowers the last steps' order."""
    sde = SDES["vp"]
    model = MIX.score_model(sde)
    x_T = torch.randn((64, 2), generator=torch.Generator().manual_seed(0), dtype=f64)
    exact = sk.decode(model, x_T, method="dopri5", rtol=1e-10, atol=1e-10)
    errs = {}
    for lof in (True, False):
        solver = DPMSolverPP3MSDE(eta=0.0, lower_order_final=lof, schedule="uniform")
        out = integrate(solver, model, x_T.clone(), make_grid(solver, model, 20), NoiseSource(0, 64))
        errs[lof] = float((out - exact).norm(dim=1).max())
    assert errs[True] < 0.5 * errs[False], errs


def test_dpmpp_3m_sde_the_known_disagreement_fits_both_orders(pf_reference):
    """Issue 17's documented disagreement: k-diffusion's dpmpp_3m_sde at eta = 0 weights the second
    difference by half (as diffusers' third-order multistep DPM-Solver++ does) and converges at order 2;
    the Taylor weight converges at order 3.  Both instances declare what they reach."""
    kd = DPMSolverPP3MSDE(eta=0.0, lower_order_final=False)
    taylor = DPMSolverPP3MSDE(eta=0.0, variant="taylor", lower_order_final=False)
    assert (kd.capabilities().order, taylor.capabilities().order) == (2.0, 3.0)
    slope_kd = assert_ode_order(pf_reference, kd, [64, 128, 256, 512])
    slope_taylor = assert_ode_order(pf_reference, taylor, [64, 128, 256, 512])
    assert slope_kd < 2.4 and slope_taylor > 2.6, (slope_kd, slope_taylor)


# --- er_sde (no peer installable here: ComfyUI is not a library; proven by identities and exact laws) ---


def test_er_sde_stage_one_reverse_sde_scaler_is_the_ddpm_ancestral_step():
    """psi(s) = s (reverse SDE), stage 1: y_b = (s_b/s_a)^2 y_a + (1 - (s_b/s_a)^2) D + s_b sqrt(1 - (s_b/s_a)^2) z,
    which is euler_ancestral at eta = 1 (itself k-diffusion's, above): same draws, same numbers."""
    sde = SDES["vp"]
    model = MIX.score_model(sde)
    x_T = torch.randn((16, 2), generator=torch.Generator().manual_seed(3), dtype=f64)
    ts = karras(sde, 12)
    er, _ = run_samplekit(ERSDE(solver_type="reverse_sde", eta=1.0, max_stage=1), model, x_T, ts)
    ea, _ = run_samplekit(EulerAncestral(), model, x_T, ts)
    assert max(float((a - b).abs().max()) for a, b in zip(er, ea)) <= 1e-12


def test_er_sde_integrals_match_closed_forms():
    s_b, s_a = torch.tensor(0.03, dtype=f64), torch.tensor(0.4, dtype=f64)
    S_1, S_2 = ERSDE(solver_type="ode").integrals(s_b, s_a)  # phi(s) = s
    assert abs(float(S_1 - torch.log(s_a / s_b))) < 1e-13
    assert abs(float(S_2 - ((s_a - s_b) - s_a * torch.log(s_a / s_b)))) < 1e-13
    S_1, S_2 = ERSDE(solver_type="reverse_sde", eta=1.0).integrals(s_b, s_a)  # phi(s) = s^2
    assert abs(float(S_1 - (1 / s_b - 1 / s_a))) < 1e-12
    assert abs(float(S_2 - (torch.log(s_a / s_b) - s_a * (1 / s_b - 1 / s_a)))) < 1e-12


@pytest.mark.parametrize("sde_name", ["vp", "edm"])
@pytest.mark.parametrize("solver_type", ["er_sde", "reverse_sde"])
def test_er_sde_weak_convergence(sde_name, solver_type):
    assert_weak_convergence(ERSDE(solver_type=solver_type), sde_name, [16, 32, 64, 128], min_slope=0.75)


@pytest.mark.parametrize("max_stage", [1, 2, 3])
def test_er_sde_ode_scaler_is_deterministic_at_its_declared_order(pf_reference, max_stage):
    assert_ode_order(pf_reference, ERSDE(solver_type="ode", max_stage=max_stage), [32, 64, 128, 256])


# --- restart (k-diffusion 0.1.1 has no restart sampler: its Heun part against sample_heun, the rest exact) ---


@pytest.mark.parametrize("sde_name", ["edm", "ve", "vp"])
def test_restart_without_restarts_is_kdiffusion_heun(sde_name):
    diff = peer_difference(Restart(restart_times=0), "sample_heun", sde_name, noise_sampler=lambda draws: None)
    assert diff <= 1e-10


def test_restart_budget_follows_comfyui_rule_and_is_spent_at_the_network():
    r = Restart()
    assert [r.restarts(n) for n in (19, 20, 35, 36, 100)] == [
        Restarts(19, 0, 0),
        Restarts(11, 9, 1),
        Restarts(26, 9, 1),
        Restarts(18, 9, 2),
        Restarts(50, 25, 2),
    ]
    assert r.plan(72).per_step == (Restarts(18, 9, 2),) and r.plan(72).n_steps == 18
    calls = []
    exact = MIX.score_model(SDES["edm"])
    model = sk.ScoreModel.from_score(lambda x, t: calls.append(1) or exact(x, t), SDES["edm"], (2,))
    res = sk.sample(model, solver=Restart(), nfe=81, num_samples=4, seed=0, dtype=f64, progress=False)
    assert len(calls) == res.nfe == 80
    with pytest.raises(sk.SolverError, match="nfe"):
        Restart(restart_steps=10, restart_times=2).plan(30)


@pytest.mark.parametrize("sde_name", ["vp", "edm"])
def test_restart_weak_convergence(sde_name):
    assert_weak_convergence(Restart(), sde_name, [40, 80, 160, 320], min_slope=0.75)


# --- lcm (k-diffusion 0.1.1 has none: against diffusers' LCMScheduler) --------------------------------


def test_lcm_matches_diffusers_lcm_scheduler():
    """Same x_T, same timesteps, same generator stream; the scheduler's timestep_scaling made huge so its
    consistency boundary condition is the identity (c_skip ~ 1e-19, c_out = 1): it denoises and renoises."""
    from diffusers import LCMScheduler

    from samplekit.discrete import DiscreteVPSDE

    sched = LCMScheduler(timestep_scaling=1e8)
    sched.set_timesteps(6)
    sched.alphas_cumprod = sched.alphas_cumprod.to(f64)  # its float32 table, evaluated in float64 by both
    sde = DiscreteVPSDE(sched.alphas_cumprod)
    model = MIX.score_model(sde)
    ts = torch.cat([sde.time_of(sched.timesteps.to(f64)), torch.tensor([sde.t_min], dtype=f64)])
    x_T = torch.randn((16, 2), generator=torch.Generator().manual_seed(3), dtype=f64)
    ours, denoised = [], []
    integrate(
        LCM(),
        model,
        x_T.clone(),
        ts,
        NoiseSource(7, 16),
        callback=lambda info: (ours.append(info.x), denoised.append(info.denoised)),
    )
    g, x, theirs = torch.Generator().manual_seed(7), x_T.clone(), []
    for n in sched.timesteps:
        x = sched.step(model.predict(x, sde.time_of(n.to(f64))).eps, n, x, generator=g).prev_sample
        theirs.append(x)
    diffs = [float((a - b).abs().max()) for a, b in zip(ours[:-1], theirs[:-1])]
    diffs.append(float((denoised[-1] - theirs[-1]).abs().max()))  # diffusers returns D at its last step
    assert len(diffs) == 6 and max(diffs) <= 1e-10, diffs


@pytest.mark.parametrize("sde_name", ["vp", "edm"])
def test_lcm_on_an_exact_non_distilled_model_is_a_baseline_that_misses_the_target(sde_name):
    """On a Gaussian D is affine, so each step keeps the mean exactly but shrinks the spread: the exact
    law's mean is right at every NFE (up to the prior's mismatch with p_T), its variance short by a margin
    that does not close with NFE — which is why lcm declares samples_target=False."""
    assert LCM().capabilities().samples_target is False
    for nfe in (8, 64, 256):
        mean, var = exact_law(LCM(), SDES[sde_name], nfe)
        assert float((mean - GAUSS.means[0]).abs().max()) < 1e-3  # only the prior's mismatch at T
        assert bool((var < GAUSS.covariances[0] - 0.1).all()), (nfe, var)


# --- sa_solver (k-diffusion 0.1.1 has none: against diffusers' SASolverScheduler update math in float64) ---


@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(predictor_order=3, corrector_order=3),
        dict(predictor_order=1, corrector_order=1, tau=0.7),
        dict(tau=0.0, predictor_order=4, corrector_order=4, lower_order_final=False),
    ],
    ids=["p2c2", "p3c3", "p1c1-tau0.7", "p4c4-ode"],
)
def test_sa_solver_matches_diffusers(options):
    """Same x_T, timesteps, generator stream and tau decisions; the scheduler's float32 sigma table replaced
    by float64 values of its own alphas_cumprod (its update math then runs in float64)."""
    from diffusers import SASolverScheduler

    from samplekit.discrete import DiscreteVPSDE

    solver = SASolver(**options)
    sched = SASolverScheduler(
        predictor_order=solver.predictor_order,
        corrector_order=max(solver.corrector_order, 1),
        lower_order_final=solver.lower_order_final,
        prediction_type="sample",
    )
    abar = sched.alphas_cumprod.to(f64)
    sde = DiscreteVPSDE(abar)
    sched.set_timesteps(12)
    sched.tau_func = lambda n: solver.tau_at(sde, sde.time_of(torch.as_tensor(n, dtype=f64)))
    steps = sched.timesteps
    sched.sigmas = torch.cat([((1 - abar[steps]) / abar[steps]).sqrt(), ((1 - abar[:1]) / abar[:1]).sqrt()])
    model = MIX.score_model(sde)
    ts = torch.cat([sde.time_of(steps.to(f64)), torch.tensor([sde.t_min], dtype=f64)])
    x_T = torch.randn((16, 2), generator=torch.Generator().manual_seed(3), dtype=f64)
    ours = []
    integrate(solver, model, x_T.clone(), ts, NoiseSource(7, 16), callback=lambda info: ours.append(info.x))
    g, x, theirs = torch.Generator().manual_seed(7), x_T.clone(), []
    for n in steps:
        x = sched.step(model.predict(x, sde.time_of(n.to(f64))).x0, n, x, generator=g).prev_sample
        theirs.append(x)
    diffs = [float((a - b).abs().max()) for a, b in zip(ours, theirs)]
    assert len(diffs) == 12 and max(diffs) <= 1e-10, diffs


@pytest.mark.parametrize("sde_name", ["vp", "edm"])
def test_sa_solver_weak_convergence(sde_name):
    assert_weak_convergence(SASolver(tau_t_min=0.0, tau_t_max=1.0), sde_name, [16, 32, 64, 128], min_slope=0.75)


@pytest.mark.parametrize(
    "options,steps",
    [
        (dict(), [32, 64, 128, 256]),
        (dict(predictor_order=3, corrector_order=3, lower_order_final=False), [64, 128, 256, 512]),
        pytest.param(
            dict(predictor_order=4, corrector_order=4, lower_order_final=False),
            [64, 128, 256, 512],
            marks=pytest.mark.slow,
        ),
    ],
    ids=["p2c2", "p3c3", "p4c4"],
)
def test_sa_solver_tau0_is_deterministic_at_its_declared_order(pf_reference, options, steps):
    assert_ode_order(pf_reference, SASolver(tau=0.0, **options), steps)


# --- every solver above: per-sample seeds make a sample independent of its batch (bitwise) ------------
NEW_STOCHASTIC = (
    "euler_ancestral",
    "dpm_2_ancestral",
    "dpmpp_2s_ancestral",
    "dpmpp_sde",
    "dpmpp_3m_sde",
    "er_sde",
    "restart",
    "lcm",
    "sa_solver",
)


@pytest.mark.parametrize("name", NEW_STOCHASTIC)
def test_per_sample_seeds_make_each_sample_independent_of_its_batch(name):
    model = MIX.score_model(SDES["vp"])
    seeds = [11, 12, 13, 14]
    nfe = 48  # restart restarts from 20 Heun steps
    batch = sk.sample(model, name, nfe=nfe, num_samples=4, seed=seeds, dtype=f64, progress=False).samples
    alone = sk.sample(model, name, nfe=nfe, num_samples=1, seed=seeds[2:3], dtype=f64, progress=False).samples
    assert torch.equal(batch[2:3], alone)
    other = sk.sample(model, name, nfe=nfe, num_samples=2, seed=[99, 13], dtype=f64, progress=False).samples
    assert torch.equal(batch[2], other[1])


@pytest.mark.parametrize("name", NEW_STOCHASTIC)
def test_a_first_step_from_alpha_zero_is_finite_on_rectified_flow(name):
    """rectified_flow has alpha_T = 0 (log-SNR -inf at T): each solver's first step must not divide by it."""
    model = MIX.score_model(sk.get_sde("rectified_flow"))
    res = sk.sample(model, name, nfe=48, num_samples=64, seed=0, dtype=f64, progress=False)
    assert torch.isfinite(res.samples).all() and res.nfe <= 48
