"""The deterministic solvers against implementations nobody here wrote, and against exact answers.

1. Peer equivalence, step by step, float64, on an exact Gaussian mixture: same x_T, same grid, max abs
   difference <= 1e-10 after every step, and the same number of calls at the network.  k-diffusion's
   samplers take a denoiser D(y, s) in y = x / alpha with s = sigma / alpha; on EDM (alpha = 1) that is
   x itself, on VP the test converts x <-> y, so the general (alpha, sigma) form is proven too.
   samplekit's grid ends at t_min > 0: the peers run on the same grid (no appended sigma = 0).
   diffusers' schedulers are driven through their update methods in float64 with their sigmas set to
   the same grid (``.step`` casts to float32).
2. Fitted convergence order: terminal error against a dopri5 (rtol = atol = 1e-11) solution of the same
   VP probability-flow ODE from the same x_T, log-log slope over step counts, near the declared order.
"""

from __future__ import annotations

import itertools
from contextlib import contextmanager

import pytest
import torch

import samplekit as sk
from exact_checks import fitted_slope
from peers import kdiff_denoiser, kdiff_trajectory, kdiffusion_sampling
from samplekit.noise import NoiseSource
from samplekit.sampling import integrate
from samplekit.schedules import karras, logsnr
from samplekit_fast.deis import DEIS
from samplekit_fast.dpm_2 import DPM2
from samplekit_fast.dpm_adaptive import DPMSolverAdaptive
from samplekit_fast.dpm_fast import DPMSolverFast
from samplekit_fast.dpmpp_2s import DPMSolverPP2S
from samplekit_fast.dpmpp_3s import DPMSolverPP3S
from samplekit_fast.gradient_estimation import GradientEstimation
from samplekit_fast.ipndm import IPNDM
from samplekit_fast.lms import LMS

# diffusers' DEIS and LMS schedulers trip numpy 2 deprecation warnings on every call
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

f64 = torch.float64
MIX = sk.GaussianMixture([0.3, 0.7], [[-1.5, 0.5], [1.0, -0.5]], [[[0.4, 0.1], [0.1, 0.3]], [[0.6, -0.2], [-0.2, 0.5]]])
# a smooth target (two broad components): the probability-flow ODE is smooth down to t_min
SMOOTH = sk.GaussianMixture(
    [0.4, 0.6], [[-1.0, 0.5], [1.0, -0.5]], [[[0.8, 0.2], [0.2, 0.6]], [[0.5, 0.0], [0.0, 0.9]]]
)
PEER_SDES = {"edm": sk.EDMSDE(), "vp": sk.VPSDE()}


class CountingNet:
    """The raw network with its own call counter (model.nfe is under test, so not the reference)."""

    def __init__(self, net) -> None:
        self.net, self.calls = net, 0

    def __call__(self, x, t):
        self.calls += 1
        return self.net(x, t)


def counted(target, sde):
    """The target's exact model (score, or x0 where alpha_T = 0) around a CountingNet."""
    exact = target.score_model(sde)
    net = CountingNet(exact.net)
    build = sk.ScoreModel.from_denoiser if exact.parametrization == "x0" else sk.ScoreModel.from_score
    return build(net, sde, (2,), name="counted"), net


def x_T_for(sde, n=16, seed=0):
    return sde.prior_std * torch.randn((n, 2), generator=torch.Generator().manual_seed(seed), dtype=f64)


def samplekit_trajectory(solver, model, x_T, ts):
    """x after every step of ``solver`` on the grid ts."""
    traj = []
    integrate(
        solver, model, x_T.clone(), ts, NoiseSource(0, x_T.shape[0]), callback=lambda info: traj.append(info.x.clone())
    )
    return traj


def max_difference(ours, theirs) -> float:
    assert len(ours) == len(theirs)
    return max(float((a - b).abs().max()) for a, b in zip(ours, theirs))


def assert_same_as_kdiffusion(solver, sampler, sde_name, ts_of, **options):
    sde = PEER_SDES[sde_name]
    ts = ts_of(sde)
    (model, net), (peer, peer_net) = counted(MIX, sde), counted(MIX, sde)
    x_T = x_T_for(sde)
    ours = samplekit_trajectory(solver, model, x_T, ts)
    theirs = kdiff_trajectory(sampler, peer, x_T, ts, **options)
    diff = max_difference(ours, theirs)
    assert diff <= 1e-10, f"{solver.name} vs k-diffusion on {sde_name}: max difference {diff:.2e}"
    assert net.calls == peer_net.calls, f"{solver.name}: {net.calls} network calls, k-diffusion {peer_net.calls}"
    return diff


@pytest.fixture(scope="module")
def pf_reference():
    """The VP model of SMOOTH, x_T and the dopri5 (rtol = atol = 1e-11) endpoint at t_min."""
    sde = sk.VPSDE()
    model = SMOOTH.score_model(sde)
    x_T = sde.prior_sample((64, 2), torch.Generator().manual_seed(0), dtype=f64)
    return model, x_T, sk.decode(model, x_T, method="dopri5", rtol=1e-11, atol=1e-11)


def terminal_errors(make, steps, reference):
    model, x_T, exact = reference
    per_step = make().capabilities().nfe_per_step
    errors = []
    for n in steps:
        res = sk.sample(model, make(), nfe=n * per_step, x_T=x_T, progress=False)
        assert res.n_steps == n
        errors.append(float((res.samples - exact).norm(dim=1).max()))
    return errors


# (id, solver factory, declared order, step counts in the asymptotic regime, tolerance on the slope)
ORDER_CASES = [
    ("dpm_2", DPM2, 2.0, [24, 48, 96, 192], 0.2),
    # LMS-4 leaves its pre-asymptotic regime late on the karras grid from s_T = 152 (local slopes
    # 2.4, 3.1, 3.6, 3.8 from 12 to 192 steps): fitted from 48 steps on
    ("lms", LMS, 4.0, [48, 96, 192, 384], 0.35),
    ("lms-order=2", lambda: LMS(solver_order=2), 2.0, [24, 48, 96, 192], 0.2),
    ("lms-order=3", lambda: LMS(solver_order=3), 3.0, [24, 48, 96, 192], 0.3),
    ("ipndm", IPNDM, 2.0, [24, 48, 96, 192], 0.2),
    ("deis", DEIS, 3.0, [12, 24, 48, 96], 0.3),
    ("deis-order=2", lambda: DEIS(solver_order=2), 2.0, [24, 48, 96, 192], 0.2),
    ("gradient_estimation", GradientEstimation, 1.0, [48, 96, 192, 384], 0.15),
    ("dpmpp_2s", DPMSolverPP2S, 2.0, [24, 48, 96, 192], 0.2),
    ("dpmpp_3s", DPMSolverPP3S, 3.0, [12, 24, 48, 96], 0.3),
]


@pytest.mark.parametrize("case", ORDER_CASES, ids=[c[0] for c in ORDER_CASES])
def test_fitted_convergence_order_is_the_declared_order(pf_reference, case):
    _, make, order, steps, tol = case
    assert make().capabilities().order == order
    errors = terminal_errors(make, steps, pf_reference)
    slope = fitted_slope(steps, errors)
    assert abs(slope - order) <= tol, f"{case[0]}: declared order {order}, fitted {slope:.2f}, errors {errors}"


# --- dpm_2 ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sde_name", list(PEER_SDES))
def test_dpm_2_is_kdiffusion_sample_dpm_2_step_by_step(sde_name):
    assert_same_as_kdiffusion(DPM2(), kdiffusion_sampling().sample_dpm_2, sde_name, lambda sde: karras(sde, 10))


def test_dpm_2_declares_two_calls_a_step_and_spends_them():
    model, net = counted(MIX, sk.VPSDE())
    res = sk.sample(model, DPM2(), nfe=21, num_samples=8, dtype=f64, progress=False)
    assert res.n_steps == 10 and net.calls == res.nfe == 20


# --- lms --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sde_name", list(PEER_SDES))
def test_lms_is_kdiffusion_sample_lms_step_by_step(sde_name):
    assert_same_as_kdiffusion(LMS(), kdiffusion_sampling().sample_lms, sde_name, lambda sde: karras(sde, 12))


def test_lms_order_option_is_kdiffusion_order_and_declared():
    assert_same_as_kdiffusion(
        LMS(solver_order=2), kdiffusion_sampling().sample_lms, "edm", lambda sde: karras(sde, 8), order=2
    )
    assert LMS(solver_order=3).capabilities().order == 3.0 and LMS(solver_order=3).options()["solver_order"] == 3
    with pytest.raises(sk.SolverError, match="solver_order=5"):
        LMS(solver_order=5)


def test_lms_is_diffusers_lms_discrete_scheduler_step_by_step():
    """diffusers' LMSDiscreteScheduler.step (float64 throughout) on samplekit's grid in y = x / alpha, s."""
    from diffusers import LMSDiscreteScheduler

    sde = sk.VPSDE()
    ts = karras(sde, 12)
    model, x_T = MIX.score_model(sde), x_T_for(sde)
    ours = samplekit_trajectory(LMS(), model, x_T, ts)
    alphas, sigmas = sde.marginal(ts)
    scheduler = LMSDiscreteScheduler(prediction_type="sample")
    # float64 numpy sigmas: its scipy quad then evaluates the Lagrange basis on floats, not tensors (fast)
    scheduler.sigmas, scheduler._step_index, scheduler.derivatives = (sigmas / alphas).numpy(), 0, []
    scheduler.is_scale_input_called = True
    y, theirs = x_T / alphas[0], []
    for i in range(len(ts) - 1):
        x0 = model.predict(alphas[i] * y, ts[i]).x0
        y = scheduler.step(x0, ts[i], y, order=4).prev_sample
        theirs.append(alphas[i + 1] * y)
    assert max_difference(ours, theirs) <= 1e-10


# --- dpmpp_2s, dpmpp_3s -----------------------------------------------------------------------------------


def diffusers_singlestep_trajectory(order, model, x_T, ts):
    """diffusers' DPMSolverSinglestepScheduler (dpmsolver++, midpoint) update methods, float64, each step
    t -> s of the grid split at the log-SNR fractions k / order, every model call made here."""
    from diffusers import DPMSolverSinglestepScheduler

    sde = model.sde
    scheduler = DPMSolverSinglestepScheduler(solver_order=order, algorithm_type="dpmsolver++", solver_type="midpoint")
    updates = (
        scheduler.dpm_solver_first_order_update,
        scheduler.singlestep_dpm_solver_second_order_update,
        scheduler.singlestep_dpm_solver_third_order_update,
    )
    x, traj = x_T, []
    for t0, t1 in itertools.pairwise(ts):
        lam0, lam1 = sde.log_snr(t0), sde.log_snr(t1)
        times = [t0] + [sde.t_from_log_snr(lam0 + k / order * (lam1 - lam0)) for k in range(1, order)] + [t1]
        alphas, sigmas = sde.marginal(torch.stack(times))
        scheduler.sigmas = sigmas / alphas
        outputs, u = [], x
        for k in range(order):
            outputs.append(model.predict(u, times[k]).x0)
            scheduler._step_index = k
            u = updates[0](outputs[0], sample=x) if k == 0 else updates[k](outputs, sample=x)
        x = u
        traj.append(x)
    return traj


@pytest.mark.parametrize("make,order", [(DPMSolverPP2S, 2), (DPMSolverPP3S, 3)], ids=["dpmpp_2s", "dpmpp_3s"])
def test_singlestep_dpmpp_is_diffusers_singlestep_scheduler_step_by_step(make, order):
    sde = sk.VPSDE()
    ts = logsnr(sde, 8)
    (model, net), (peer, peer_net) = counted(MIX, sde), counted(MIX, sde)
    x_T = x_T_for(sde)
    diff = max_difference(
        samplekit_trajectory(make(), model, x_T, ts), diffusers_singlestep_trajectory(order, peer, x_T, ts)
    )
    assert diff <= 1e-10, f"dpmpp_{order}s vs diffusers: {diff:.2e}"
    assert net.calls == peer_net.calls == order * 8


@pytest.mark.parametrize("sde_name", list(PEER_SDES))
def test_dpmpp_2s_is_kdiffusion_dpmpp_2s_ancestral_at_eta_zero_step_by_step(sde_name):
    assert_same_as_kdiffusion(
        DPMSolverPP2S(), kdiffusion_sampling().sample_dpmpp_2s_ancestral, sde_name, lambda sde: karras(sde, 10), eta=0.0
    )


# --- ipndm --------------------------------------------------------------------------------------------------


def comfy_ipndm(denoiser, y, sigmas, max_order=4):
    """ComfyUI's ``sample_ipndm`` loop (comfy/k_diffusion/sampling.py; ComfyUI is not installable here),
    transcribed in k-diffusion's terms: d = to_d(y, sigma, D(y, sigma)), fixed Adams-Bashforth weights."""
    to_d = kdiffusion_sampling().to_d
    weights = {1: [1.0], 2: [3 / 2, -1 / 2], 3: [23 / 12, -16 / 12, 5 / 12], 4: [55 / 24, -59 / 24, 37 / 24, -9 / 24]}
    ds, traj = [], []
    for i in range(len(sigmas) - 1):
        ds.insert(0, to_d(y, sigmas[i], denoiser(y, sigmas[i] * y.new_ones(y.shape[0]))))
        ds = ds[:max_order]
        y = y + (sigmas[i + 1] - sigmas[i]) * sum(w * d for w, d in zip(weights[len(ds)], ds))
        traj.append(y)
    return traj


@pytest.mark.parametrize("max_order", [4, 2])
def test_ipndm_is_comfyui_ipndm_formula_step_by_step(max_order):
    sde = PEER_SDES["edm"]
    ts = karras(sde, 12)
    model, x_T = MIX.score_model(sde), x_T_for(sde)
    ours = samplekit_trajectory(IPNDM(max_order=max_order), model, x_T, ts)
    assert max_difference(ours, comfy_ipndm(kdiff_denoiser(model), x_T, ts, max_order)) <= 1e-10


# --- deis ---------------------------------------------------------------------------------------------------


def diffusers_deis_trajectory(order, model, x_T, ts):
    """diffusers' DEISMultistepScheduler (deis, log-rho) update methods, float64, on the grid ts, with its
    step()'s order rule: min(order, step + 1), and on grids shorter than 15 the last two steps at most 1, 2."""
    from diffusers import DEISMultistepScheduler

    sde = model.sde
    scheduler = DEISMultistepScheduler(solver_order=order, algorithm_type="deis", lower_order_final=True)
    alphas, sigmas = sde.marginal(ts)
    scheduler.sigmas = sigmas / alphas
    updates = (
        scheduler.deis_first_order_update,
        scheduler.multistep_deis_second_order_update,
        scheduler.multistep_deis_third_order_update,
    )
    n, x, outputs, traj = len(ts) - 1, x_T, [], []
    for i in range(n):
        outputs.append(model.predict(x, ts[i]).eps)
        k = min(order, i + 1)
        if n < 15:
            k = min(k, 1 if i == n - 1 else 2 if i == n - 2 else k)
        scheduler._step_index = i
        x = updates[0](outputs[-1], sample=x) if k == 1 else updates[k - 1](outputs, sample=x)
        traj.append(x)
    return traj


# below 15 steps samplekit's last-steps rule (p_i <= n - i at every n) is diffusers' (its lower_order_final
# acts below 15 only); from 15 steps diffusers' default is samplekit's lower_order_final=False
@pytest.mark.parametrize("order,n,lower_order_final", [(3, 8, True), (3, 20, False), (2, 10, True)])
def test_deis_is_diffusers_deis_multistep_scheduler_step_by_step(order, n, lower_order_final):
    sde = sk.VPSDE()
    ts = logsnr(sde, n)
    (model, net), (peer, peer_net) = counted(MIX, sde), counted(MIX, sde)
    x_T = x_T_for(sde)
    ours = samplekit_trajectory(DEIS(solver_order=order, lower_order_final=lower_order_final), model, x_T, ts)
    diff = max_difference(ours, diffusers_deis_trajectory(order, peer, x_T, ts))
    assert diff <= 1e-10, f"deis order {order}, {n} steps vs diffusers: {diff:.2e}"
    assert net.calls == peer_net.calls == n


def test_deis_order_option_is_declared_and_checked():
    assert DEIS(solver_order=2).capabilities().order == 2.0 and DEIS().options()["solver_order"] == 3
    with pytest.raises(sk.SolverError, match="solver_order=4"):
        DEIS(solver_order=4)


# --- gradient_estimation ------------------------------------------------------------------------------------


def comfy_gradient_estimation(denoiser, y, sigmas, ge_gamma=2.0):
    """ComfyUI's ``sample_gradient_estimation`` loop (comfy/k_diffusion/sampling.py, not installable here),
    transcribed in k-diffusion's terms: Euler first, then d_bar = gamma d + (1 - gamma) d_prev."""
    to_d = kdiffusion_sampling().to_d
    d_prev, traj = None, []
    for i in range(len(sigmas) - 1):
        d = to_d(y, sigmas[i], denoiser(y, sigmas[i] * y.new_ones(y.shape[0])))
        d_bar = d if d_prev is None else ge_gamma * d + (1 - ge_gamma) * d_prev
        y = y + (sigmas[i + 1] - sigmas[i]) * d_bar
        d_prev = d
        traj.append(y)
    return traj


@pytest.mark.parametrize("sde_name", list(PEER_SDES))
@pytest.mark.parametrize("ge_gamma", [2.0, 1.5])
def test_gradient_estimation_is_comfyui_formula_step_by_step(sde_name, ge_gamma):
    sde = PEER_SDES[sde_name]
    ts = karras(sde, 12)
    model, x_T = MIX.score_model(sde), x_T_for(sde)
    alphas, sigmas = sde.marginal(ts)
    theirs = [
        alphas[i + 1] * y
        for i, y in enumerate(
            comfy_gradient_estimation(kdiff_denoiser(model), x_T / alphas[0], sigmas / alphas, ge_gamma)
        )
    ]
    ours = samplekit_trajectory(GradientEstimation(ge_gamma=ge_gamma), model, x_T, ts)
    assert max_difference(ours, theirs) <= 1e-10


def test_gradient_estimation_gamma_one_is_euler_in_the_noise_level_and_bad_gamma_is_refused():
    sde = sk.VPSDE()
    ts = karras(sde, 10)
    model, x_T = MIX.score_model(sde), x_T_for(sde)
    euler = kdiff_trajectory(kdiffusion_sampling().sample_euler, model, x_T, ts)
    assert max_difference(samplekit_trajectory(GradientEstimation(ge_gamma=1.0), model, x_T, ts), euler) <= 1e-10
    with pytest.raises(sk.SolverError, match="ge_gamma"):
        GradientEstimation(ge_gamma=float("nan"))


# --- dpm_fast, dpm_adaptive ---------------------------------------------------------------------------------


@contextmanager
def float64_default():
    """k-diffusion's DPMSolver builds its log-SNR grid with torch.linspace, in the default dtype: float64 here."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(f64)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def kdiff_dpm_solver(model, seen):
    """k-diffusion's DPMSolver on the exact denoiser in y = x / alpha, its noise-level range [s(t_min), s(T)]."""
    sde = model.sde
    solver = kdiffusion_sampling().DPMSolver(kdiff_denoiser(model), info_callback=lambda d: seen.append(d["x"].clone()))
    lam_T, lam_0 = (sde.log_snr(torch.tensor(t, dtype=f64)) for t in (sde.T, sde.t_min))
    return solver, lam_T, lam_0  # k-diffusion's t = -log sigma is lambda


@pytest.mark.parametrize("sde_name", list(PEER_SDES))
@pytest.mark.parametrize("nfe", [2, 6, 7, 20])
def test_dpm_fast_is_kdiffusion_dpm_solver_fast_step_by_step(sde_name, nfe):
    sde = PEER_SDES[sde_name]
    (model, net), (peer, peer_net) = counted(MIX, sde), counted(MIX, sde)
    x_T = x_T_for(sde)
    ours = []
    res = sk.sample(model, DPMSolverFast(), nfe=nfe, x_T=x_T, progress=False, callback=lambda i: ours.append(i.x))
    seen = []
    solver, lam_T, lam_0 = kdiff_dpm_solver(peer, seen)
    alphas = sde.marginal(res.ts)[0]
    with float64_default():
        y = solver.dpm_solver_fast(x_T / alphas[0], lam_T, lam_0, nfe)
    theirs = [alphas[i + 1] * yi for i, yi in enumerate(seen[1:] + [y])]
    diff = max_difference(ours, theirs)
    assert diff <= 1e-10, f"dpm_fast nfe={nfe} on {sde_name}: {diff:.2e}"
    assert net.calls == peer_net.calls == res.nfe == nfe


def test_dpm_fast_converges_at_order_three_in_the_budget(pf_reference):
    model, x_T, exact = pf_reference
    budgets = [36, 72, 144, 288]
    errors = [
        float((sk.sample(model, DPMSolverFast(), nfe=n, x_T=x_T, progress=False).samples - exact).norm(dim=1).max())
        for n in budgets
    ]
    slope = fitted_slope(budgets, errors)
    assert abs(slope - 3.0) <= 0.3, f"dpm_fast: fitted {slope:.2f}, errors {errors}"


@pytest.mark.parametrize("sde_name", list(PEER_SDES))
@pytest.mark.parametrize("order,rtol,atol", [(3, 0.05, 0.0078), (2, 0.05, 0.0078), (3, 1e-4, 1e-4)])
def test_dpm_adaptive_is_kdiffusion_dpm_solver_adaptive(sde_name, order, rtol, atol):
    """Same accepted/rejected steps (hence the same network calls) and the same samples."""
    sde = PEER_SDES[sde_name]
    (model, net), (peer, peer_net) = counted(MIX, sde), counted(MIX, sde)
    x_T = x_T_for(sde)
    res = sk.sample(
        model, DPMSolverAdaptive(solver_order=order, rtol=rtol, atol=atol), nfe=5000, x_T=x_T, progress=False
    )
    solver, lam_T, lam_0 = kdiff_dpm_solver(peer, [])
    alpha_T, alpha_0 = (sde.marginal(torch.tensor(t, dtype=f64))[0] for t in (sde.T, sde.t_min))
    with float64_default():
        y, info = solver.dpm_solver_adaptive(x_T / alpha_T, lam_T, lam_0, order=order, rtol=rtol, atol=atol)
    diff = float((res.samples - alpha_0 * y).abs().max())
    assert diff <= 1e-10, f"dpm_adaptive order {order}, rtol {rtol} on {sde_name}: {diff:.2e}"
    assert net.calls == res.nfe == peer_net.calls == info["nfe"]


def test_dpm_adaptive_error_falls_with_the_tolerance_and_the_cap_is_honoured(pf_reference):
    model, x_T, exact = pf_reference
    errors, spent = [], []
    for tol in (1e-3, 1e-5, 1e-7):
        res = sk.sample(model, DPMSolverAdaptive(rtol=tol, atol=tol), nfe=20000, x_T=x_T, progress=False)
        errors.append(float((res.samples - exact).norm(dim=1).max()))
        spent.append(res.nfe)
    assert errors[2] < errors[1] < errors[0] and errors[2] < 1e-5, f"errors {errors} at NFE {spent}"
    assert spent[0] < spent[1] < spent[2]
    counted_model, net = counted(SMOOTH, model.sde)
    with pytest.raises(sk.SolverError, match="nfe=30"):
        sk.sample(counted_model, DPMSolverAdaptive(rtol=1e-7, atol=1e-7), nfe=30, x_T=x_T, progress=False)
    assert net.calls <= 30


@pytest.mark.parametrize(
    "options,word",
    [
        ({"solver_order": 1}, "solver_order"),
        ({"rtol": -1.0}, "rtol"),
        ({"rtol": 0.0, "atol": 0.0}, "rtol"),
        ({"h_init": 0.0}, "h_init"),
        ({"accept_safety": 0.0}, "accept_safety"),
    ],
)
def test_dpm_adaptive_bad_options_are_refused_by_name(options, word):
    with pytest.raises(sk.SolverError, match=word):
        DPMSolverAdaptive(**options)


def test_dpm_adaptive_declares_its_order_and_calls_per_attempt():
    caps = DPMSolverAdaptive(solver_order=2).capabilities()
    assert caps.adaptive and caps.order == 2.0 and caps.nfe_per_step == 2
    assert DPMSolverAdaptive().capabilities().order == 3.0


# --- alpha_T = 0 (rectified flow): the first step is the DDIM step, no inf - inf --------------------------

NEW_FIXED_STEP = ["dpm_2", "lms", "ipndm", "deis", "dpmpp_2s", "dpmpp_3s", "dpm_fast", "gradient_estimation"]


@pytest.fixture(scope="module")
def flow_reference():
    sde = sk.get_sde("rectified_flow")
    assert bool(sde.marginal(torch.tensor(sde.T, dtype=f64))[0] == 0)
    model = SMOOTH.score_model(sde)
    x_T = sde.prior_sample((32, 2), torch.Generator().manual_seed(0), dtype=f64)
    return model, x_T, sk.decode(model, x_T, method="dopri5", rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("grid", ["default", "uniform"])
@pytest.mark.parametrize("name", NEW_FIXED_STEP)
def test_every_new_solver_integrates_from_alpha_T_zero_and_converges(flow_reference, name, grid):
    """From T = 1 (alpha_T = 0, log-SNR -inf): finite, near the exact flow, error falling.  The first step
    from r = alpha / sigma = 0 is DDIM, which errs by O(r_1^2) where d x0 / dr is O(1): on a grid uniform in t
    (r_1 ~ h) every solver of order >= 2 then converges at order 2 (measured 1.9-2.2, gradient estimation
    0.9); on its default grid (first step tiny in r) each keeps its order (lms 3.0-3.6 over 32-128 steps)."""
    model, x_T, exact = flow_reference
    options = {"schedule": "uniform"} if grid == "uniform" else {}
    caps = sk.get_solver(name).capabilities()
    steps = [32, 64, 128]
    errors = [
        float(
            (
                sk.sample(
                    model, sk.get_solver(name, **options), nfe=n * caps.nfe_per_step, x_T=x_T, progress=False
                ).samples
                - exact
            )
            .norm(dim=1)
            .max()
        )
        for n in steps
    ]
    expected = min(caps.order, 2.0 if grid == "uniform" else 3.0)
    slope = fitted_slope(steps, errors)
    assert slope >= expected - 0.4, f"{name} on rectified flow ({grid}): fitted {slope:.2f}, errors {errors}"
    assert errors[-1] < (0.15 if expected == 1 else 4e-3)


def test_dpm_adaptive_integrates_from_alpha_T_zero(flow_reference):
    model, x_T, exact = flow_reference
    res = sk.sample(model, "dpm_adaptive", nfe=20000, x_T=x_T, progress=False, rtol=1e-6, atol=1e-6)
    assert float((res.samples - exact).norm(dim=1).max()) < 1e-5


# --- every SDE with Gaussian marginals: the closed-form endpoint of a single Gaussian ---------------------


def discrete_vp():
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=f64)  # DDPM's linear training schedule
    return sk.DiscreteVPSDE(torch.cumprod(1 - betas, 0))


ALL_SDES = {
    "vp": sk.VPSDE,
    "subvp": sk.SubVPSDE,
    "ve": sk.VESDE,
    "ou": sk.OUSDE,
    "edm": sk.EDMSDE,
    "discrete_vp": discrete_vp,
}


def gaussian_endpoint(sde, mu, S, x_T):
    """The closed-form probability-flow ODE solution at t_min for a N(mu, diag S) target."""
    a_T, s_T = sde.marginal(torch.tensor(sde.T, dtype=f64))
    a_0, s_0 = sde.marginal(torch.tensor(sde.t_min, dtype=f64))
    return a_0 * mu + (a_0**2 * S + s_0**2).sqrt() / (a_T**2 * S + s_T**2).sqrt() * (x_T - a_T * mu)


# vp and edm are proven above (fitted order against dopri5 on VP; peers step by step on EDM and VP)
@pytest.mark.parametrize("sde_name", [name for name in ALL_SDES if name not in ("vp", "edm")])
def test_every_new_solver_reaches_the_exact_gaussian_endpoint_on_every_sde(sde_name):
    """Each solver on its default grid: error at 100 steps small against the closed form, and halving the
    step divides it by about 2^order (at least 2^(min(order, 3) - 0.7)); dpm_adaptive within 1e-4 at 1e-6."""
    sde = ALL_SDES[sde_name]()
    mu, S = torch.tensor([1.5, -0.5], dtype=f64), torch.tensor([0.3, 2.0], dtype=f64)
    model = sk.GaussianMixture([1.0], mu[None], S[None]).score_model(sde)
    x_T = x_T_for(sde, n=16)
    exact = gaussian_endpoint(sde, mu, S, x_T)
    scale = float(exact.norm(dim=1).max())
    for name in NEW_FIXED_STEP:
        caps = sk.get_solver(name).capabilities()
        errors = [
            float(
                (sk.sample(model, name, nfe=n * caps.nfe_per_step, x_T=x_T, progress=False).samples - exact)
                .norm(dim=1)
                .max()
            )
            for n in (50, 100)
        ]
        assert errors[1] < (0.1 if caps.order < 2 else 0.005) * scale, f"{name} on {sde_name}: errors {errors}"
        assert errors[1] < errors[0] / 2 ** (min(caps.order, 3) - 0.7), f"{name} on {sde_name}: errors {errors}"
    res = sk.sample(model, "dpm_adaptive", nfe=20000, x_T=x_T, progress=False, rtol=1e-6, atol=1e-6)
    assert float((res.samples - exact).norm(dim=1).max()) < 1e-4


@pytest.mark.parametrize("name", NEW_FIXED_STEP + ["dpm_adaptive"])
def test_float32_in_float32_out_and_close_to_float64(name):
    sde = sk.VPSDE()
    model = MIX.score_model(sde)
    x_T = x_T_for(sde).float()
    nfe = 500 if name == "dpm_adaptive" else 30  # a cap for the adaptive one (default rtol/atol)
    r32 = sk.sample(model, name, nfe=nfe, x_T=x_T, progress=False)
    r64 = sk.sample(model, name, nfe=nfe, x_T=x_T.double(), progress=False)
    assert r32.samples.dtype == torch.float32 and torch.isfinite(r32.samples).all()
    assert float((r32.samples.double() - r64.samples).abs().max()) < (1e-2 if name == "dpm_adaptive" else 1e-4)


def test_dpm_2_is_diffusers_kdpm2_discrete_scheduler_step_by_step():
    """diffusers' KDPM2DiscreteScheduler.step (epsilon prediction, float64) in y = x / alpha on samplekit's
    grid, its midpoints from its own rule sigmas.log().lerp(sigmas.roll(1).log(), 0.5).exp()."""
    from diffusers import KDPM2DiscreteScheduler

    sde = sk.VPSDE()
    ts = karras(sde, 10)
    model, x_T = MIX.score_model(sde), x_T_for(sde)
    ours = samplekit_trajectory(DPM2(), model, x_T, ts)
    alphas, sigmas = sde.marginal(ts)
    levels = sigmas / alphas
    interpol = levels.log().lerp(levels.roll(1).log(), 0.5).exp()
    scheduler = KDPM2DiscreteScheduler()

    def eps(y, s):
        t = sde.t_from_log_snr(-torch.log(s)).clamp(sde.t_min, sde.T)
        return model.predict(sde.marginal(t)[0] * y, t).eps

    y, theirs = x_T / alphas[0], []
    for i in range(len(ts) - 1):
        scheduler.sigmas, scheduler.sigmas_interpol = levels[i : i + 2], interpol[i : i + 2]
        scheduler._step_index, scheduler.sample = 0, None
        y_mid = scheduler.step(eps(y, levels[i]), ts[i], y).prev_sample
        y = scheduler.step(eps(y_mid, interpol[i + 1]), ts[i], y_mid).prev_sample
        theirs.append(alphas[i + 1] * y)
    assert max_difference(ours, theirs) <= 1e-10


@pytest.mark.parametrize("name", NEW_FIXED_STEP)
def test_budget_holds_from_alpha_T_zero_where_the_core_takes_the_first_step(name):
    """On rectified flow the core takes the first step (one call) and the solver the rest: the calls at the
    network stay within every budget (dpm_fast once spent 4 of 3: its order plan was rebuilt, not cut)."""
    sde = sk.get_sde("rectified_flow")
    for nfe in range(1, 13):
        for denoise_final in (False, True):
            model, net = counted(MIX, sde)
            try:
                res = sk.sample(
                    model, name, nfe=nfe, num_samples=4, dtype=f64, progress=False, denoise_final=denoise_final
                )
            except sk.SolverError as exc:
                assert "nfe" in str(exc) and net.calls == 0
                continue
            assert res.nfe == net.calls <= nfe and torch.isfinite(res.samples).all(), (nfe, denoise_final)
