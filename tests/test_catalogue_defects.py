"""Regression tests for the defects an outside audit found in the sampler catalogue (issue 17).

Defect 1: a multistep solver's error must not rise with NFE on any registered grid.  DPM-Solver++'s
rule lowered the order of the last steps only below 15 steps; at 15 the last step extrapolated the
history over a log-SNR step 4-6x the one before (grids uniform in t), and the error jumped (ring, VP,
uniform, NFE 14 -> 15: dpmpp_3m 0.27 -> 7.5, dpmpp_2m 0.20 -> 1.0, unipc 0.23 -> 0.77).
"""

from __future__ import annotations

import inspect

import pytest
import torch

import samplekit as sk
from samplekit.discrete import DiscreteVPSDE
from samplekit.targets import ring2d
from samplekit_fast.multistep import MultistepSolver

f64 = torch.float64

# --- defect 1: the error of every multistep solver falls with NFE on every registered schedule ---------------

SWEEP_NFE = [5, 8, 10, 12, 14, 15, 16, 20, 30]
#: "materially": a rise above the best error at any smaller NFE by more than this factor.  Before the fix
#: the rises were 3.6x (unipc) to 31x (dpmpp_3m); after it the largest is 1.23x (unipc, quadratic,
#: 12 -> 15, pre-asymptotic: which of the ring's narrow modes the worst sample reaches).
MAX_RISE = 1.5


def multistep_solvers():
    """Registered solvers built on MultistepSolver; a stochastic one only if it has an ``eta`` (run at 0)."""
    out = []
    for info in sorted(sk.available("solver"), key=lambda c: c.name):
        cls = info.factory
        if not (isinstance(cls, type) and issubclass(cls, MultistepSolver)):
            continue
        options = {}
        if cls.stochastic:
            if "eta" not in inspect.signature(cls.__init__).parameters:
                continue
            options = {"eta": 0.0}
        marks = []
        if cls.init is not MultistepSolver.init and "plan_orders" not in inspect.getsource(cls):
            marks = [
                pytest.mark.xfail(
                    reason=f"{info.name} keeps DPM-Solver++'s below-15-steps rule (to match its "
                    "diffusers peer step by step) and has the same cliff at 15 steps",
                    strict=False,
                )
            ]
        out.append(pytest.param(info.name, options, id=info.name, marks=marks))
    return out


@pytest.fixture(scope="module")
def ring_reference():
    """x_T (16 points) and the probability-flow ODE's endpoint from it (dopri5, rtol = atol = 1e-10), VP."""
    sde = sk.VPSDE()
    model = ring2d().score_model(sde)
    x_T = sde.prior_sample((16, 2), torch.Generator().manual_seed(0), dtype=f64)
    return x_T, sk.decode(model, x_T, method="dopri5", rtol=1e-10, atol=1e-10)


def sde_for(schedule: str):
    """The SDE a schedule is swept on: VP, or for ``discrete`` the discrete VP on the same B at t = (n+1)/N.

    On the grid alpha_t and sigma_t (so lambda_t) of both agree, and the exact ring model's x0 depends on t
    only through them: in lambda the two probability-flow ODEs are one, with the same end points
    (lambda_T, lambda_{t_min}), so both share the VP reference (checked in ``test_discrete_vp_shares_...``).
    """
    return DiscreteVPSDE.from_vp(sk.VPSDE()) if schedule == "discrete" else sk.VPSDE()


def test_discrete_vp_shares_the_vp_reference_endpoint(ring_reference):
    x_T, exact = ring_reference
    model = ring2d().score_model(sde_for("discrete"))
    res = sk.sample(model, "dpmpp_3m", nfe=500, x_T=x_T, schedule="logsnr", progress=False)
    assert float((res.samples - exact).norm(dim=1).max()) < 1e-4


@pytest.mark.parametrize(
    "schedule", [c.name for c in sorted(sk.available("schedule"), key=lambda c: c.name) if c.name != "optimized"]
)
# optimized needs schedule_options model=, solver= (engineer H, issue 12).  ays (SD-tuned levels) converges on
# the ring more slowly (dpmpp_3m: 0.278 at 5, 0.40 at 15, 0.043 at 30), hence the 5x convergence check below.
@pytest.mark.parametrize("name,options", multistep_solvers())
def test_multistep_error_never_rises_materially_with_nfe(ring_reference, name, options, schedule):
    x_T, exact = ring_reference
    model = ring2d().score_model(sde_for(schedule))
    errors = []
    for nfe in SWEEP_NFE:
        res = sk.sample(model, name, nfe=nfe, x_T=x_T, schedule=schedule, progress=False, **options)
        errors.append(float((res.samples - exact).norm(dim=1).max()))
    table = ", ".join(f"{n}: {e:.3g}" for n, e in zip(SWEEP_NFE, errors))
    for k in range(1, len(errors)):
        best = min(errors[:k])
        assert errors[k] <= MAX_RISE * best, (
            f"{name} on {schedule}: error {errors[k]:.3g} at NFE {SWEEP_NFE[k]} is {errors[k] / best:.2f}x the best "
            f"at fewer NFE ({best:.3g}); errors by NFE: {table}"
        )
    assert errors[-1] < 0.2 * max(errors), f"{name} on {schedule} does not converge: {table}"


# --- defect 3: the discrete schedule's spacings are diffusers' own ---------------------------------------------


def _scheduler(name: str, N: int, spacing: str, offset: int):
    import diffusers

    return getattr(diffusers, name)(num_train_timesteps=N, timestep_spacing=spacing, steps_offset=offset)


DDIM_LIKE = ("DDIMScheduler", "DDPMScheduler", "EulerDiscreteScheduler")
MULTISTEP = ("DPMSolverMultistepScheduler", "UniPCMultistepScheduler", "DEISMultistepScheduler")


@pytest.mark.parametrize("spacing", ["linspace", "leading", "trailing"])
@pytest.mark.parametrize("scheduler", DDIM_LIKE + MULTISTEP)
def test_discrete_spacings_are_the_diffusers_schedulers_timesteps(scheduler, spacing):
    """``diffusers_timesteps`` equals each scheduler's ``set_timesteps`` for several N, step counts, offsets."""
    pytest.importorskip("diffusers")
    from samplekit.discrete import diffusers_timesteps

    convention = "multistep" if scheduler in MULTISTEP else "ddim"
    checked = 0
    for N in (1000, 500, 37):
        for m in (1, 2, 3, 4, 7, 10, 15, 25, 50):
            for offset in (0, 1) if spacing == "leading" else (0,):
                if m >= N or (scheduler in MULTISTEP and m + 1 >= N):
                    continue
                sched = _scheduler(scheduler, N, spacing, offset)
                sched.set_timesteps(m)
                want = sched.timesteps.double()
                if scheduler == "EulerDiscreteScheduler" and spacing == "linspace":
                    want = want.round()  # Euler keeps linspace timesteps fractional; samplekit rounds them
                got = diffusers_timesteps(N, m, spacing, offset, convention)
                assert got.tolist() == want.long().tolist(), f"{scheduler} {spacing} N={N} m={m} offset={offset}"
                checked += 1
    assert checked >= 20


def test_discrete_grid_is_diffusers_timesteps_then_t_min():
    """n steps: diffusers' n timesteps (DPMSolverMultistep) then timestep 0; the issue's trailing case; the
    SD 1.x (leading, offset 1) DDIM grid 751, 501, 251, 1, 0; DDIM linspace's own last timestep 0 kept once."""
    pytest.importorskip("diffusers")
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    from samplekit.discrete import discrete_timesteps

    sde = DiscreteVPSDE.from_vp(sk.VPSDE(), 1000)

    def grid(n, **options):
        ts = discrete_timesteps(sde, n, **options)
        assert len(ts) == n + 1 and ts[-1] == sde.t_min
        return sde.timestep(ts).long().tolist()

    assert grid(10, spacing="trailing") == [999, 899, 799, 699, 599, 499, 399, 299, 199, 99, 0]
    assert grid(4, spacing="leading", steps_offset=1, convention="ddim") == [751, 501, 251, 1, 0]
    for n in (4, 10, 20):
        dpm = DPMSolverMultistepScheduler(num_train_timesteps=1000, timestep_spacing="linspace")
        dpm.set_timesteps(n)
        assert grid(n) == dpm.timesteps.tolist() + [0]
        ddim = DDIMScheduler(num_train_timesteps=1000, timestep_spacing="linspace")  # m timesteps end at 0: m = n + 1
        ddim.set_timesteps(n + 1)
        assert grid(n, convention="ddim") == ddim.timesteps.tolist()
    with pytest.raises(ValueError, match="spacing='even'"):
        discrete_timesteps(sde, 10, spacing="even")
    with pytest.raises(ValueError, match="steps_offset"):
        discrete_timesteps(sde, 10, spacing="leading", steps_offset=-1)
    with pytest.raises(ValueError, match="not strictly decreasing"):
        discrete_timesteps(sde, 10, spacing="leading", steps_offset=500)


# --- defect 4: per-sample seeds make every stochastic solver batch-invariant -----------------------------------

STOCHASTIC = [c for c in sorted(sk.available("solver"), key=lambda c: c.name) if c.info.get("stochastic")]


@pytest.mark.parametrize("info", STOCHASTIC, ids=lambda c: c.name)
def test_per_sample_seeds_give_each_sample_whatever_batch_it_is_drawn_in(info):
    """Sample i drawn in a batch of 5 (seed = one int per sample) equals it drawn alone, bitwise (CPU, float64);
    a solver that cannot honour per-sample seeds must refuse them before any network call."""
    sde = sk.VPSDE() if "vp" in (info.info.get("sde_families") or ["vp"]) else sk.VESDE()
    net = ring2d().score_model(sde).net
    calls = [0]

    def counted(x, t):
        calls[0] += 1
        return net(x, t)

    model = sk.ScoreModel.from_score(counted, sde, (2,))
    seeds = [101, 7, 55, 3, 2024]
    kw = dict(nfe=12, dtype=f64, progress=False)
    try:
        batch = sk.sample(model, info.name, num_samples=5, seed=seeds, **kw).samples
    except sk.SamplekitError as exc:
        assert "seed" in str(exc) and calls[0] == 0, f"{info.name}: refusal must name the seed, before work: {exc}"
        return
    for i in (0, 2, 4):
        alone = sk.sample(model, info.name, num_samples=1, seed=[seeds[i]], **kw).samples
        assert torch.equal(batch[i], alone[0]), (
            f"{info.name}: sample {i} differs by {float((batch[i] - alone[0]).abs().max()):.3g} "
            "alone vs in a batch of 5"
        )


def test_pc_with_score_sdes_batch_norms_refuses_per_sample_seeds_before_any_call_and_keeps_its_step():
    """step_size="batch_norms" is score_sde's corrector (x + e s + sqrt(2e) z, e = 2 a (snr mean|z| / mean|s|)^2),
    checked one corrector step by hand; with one seed per sample it refuses before the network is called."""
    from samplekit.noise import NoiseSource
    from samplekit_builtin.pc import langevin_correct

    sde = sk.VPSDE()
    model = ring2d().score_model(sde)
    with pytest.raises(sk.SolverError, match="batch_norms.*seed=<int>"):
        sk.sample(model, "pc", nfe=10, num_samples=3, seed=[1, 2, 3], step_size="batch_norms", progress=False)
    assert model.nfe == 0
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(0), dtype=f64)
    t, a = torch.tensor(0.3, dtype=f64), torch.tensor(0.97, dtype=f64)
    got = langevin_correct(model, t, x, a, 0.16, NoiseSource(5, 6), "batch_norms")
    z, s = NoiseSource(5, 6).randn_like(x), model(x, t)
    e = 2 * a * (0.16 * z.norm(dim=1).mean() / s.norm(dim=1).mean()) ** 2
    assert torch.allclose(got, x + e * s + (2 * e).sqrt() * z, rtol=1e-12, atol=1e-12)
    sigma = sde.marginal(t)[1]
    got = langevin_correct(model, t, x, a, 0.16, NoiseSource(5, 6))
    e = 2 * a * (0.16 * sigma) ** 2
    assert torch.allclose(got, x + e * s + (2 * e).sqrt() * z, rtol=1e-12, atol=1e-12)


# --- defect 5: unipc's declared order describes the instance ---------------------------------------------------


@pytest.mark.parametrize(
    "order,corrector,declared",
    [(1, True, 2.0), (2, True, 3.0), (3, True, 4.0), (1, False, 1.0), (2, False, 2.0), (3, False, 3.0)],
)
def test_unipc_capabilities_follow_its_order_and_corrector_options(order, corrector, declared):
    solver = sk.get_solver("unipc", solver_order=order, corrector=corrector)
    assert solver.capabilities().order == declared
    assert solver.options()["solver_order"] == order


def test_unipc_declared_order_is_the_fitted_order():
    """The declared order of unipc(order=1) is 2 (UniP-1 + UniC): fitted on the exact smooth-mixture flow,
    where the class default (3, for order=2) would be wrong."""
    smooth = sk.GaussianMixture(
        [0.4, 0.6], [[-1.0, 0.5], [1.0, -0.5]], [[[0.8, 0.2], [0.2, 0.6]], [[0.5, 0.0], [0.0, 0.9]]]
    )
    sde = sk.VPSDE()
    model = smooth.score_model(sde)
    x_T = sde.prior_sample((32, 2), torch.Generator().manual_seed(0), dtype=f64)
    exact = sk.decode(model, x_T, method="dopri5", rtol=1e-11, atol=1e-11)
    solver = sk.get_solver("unipc", solver_order=1)
    steps, errors = [32, 64, 128], []
    for n in steps:
        res = sk.sample(model, solver, nfe=n, x_T=x_T, progress=False)
        errors.append(float((res.samples - exact).norm(dim=1).max()))
    logs = torch.log(torch.tensor([steps, errors], dtype=f64))
    slope = float(-torch.cov(logs)[0, 1] / logs[0].var())
    assert abs(slope - solver.capabilities().order) < 0.3, (slope, errors)
