"""The fast high-order solvers (plugins/samplekit_fast) against exact answers.

1. Convergence order on the exact probability-flow ODE: terminal error at t_min against a
   tight-tolerance dopri5 solution from the same x_T, slope of a log-log regression over step counts.
2. Consistency on a single Gaussian, whose probability-flow ODE has a closed-form solution, on
   every SDE: each deterministic solver reaches the exact endpoint, its error falling at its order.
3. Identities that pin the formulas: UniPC-bh2 without corrector is DPM-Solver++(2M), and so is
   SDE-DPM-Solver++(2M) at eta = 0.
4. NFE reported == NFE counted <= budget (multistep solvers spend all of it), for small budgets too.
5. Every SDE (vp, subvp, ve, ou, edm): samples near the exact-sample SW2 floor of the 2-D ring.
6. Bad options fail with errors that name the option.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import samplekit as sk
from exact_checks import distance_and_floor, fitted_slope
from samplekit.reverse import probability_flow_drift
from samplekit.targets import ring2d

f64 = torch.float64
FAST = ("dpmpp_2m", "dpmpp_3m", "dpmpp_2m_sde", "unipc", "edm_heun")
SDES = {"vp": sk.VPSDE(), "subvp": sk.SubVPSDE(), "ve": sk.VESDE(), "ou": sk.OUSDE(), "edm": sk.EDMSDE()}
# a smooth target (two broad components): the probability-flow ODE is smooth down to t_min
SMOOTH = sk.GaussianMixture(
    [0.4, 0.6], [[-1.0, 0.5], [1.0, -0.5]], [[[0.8, 0.2], [0.2, 0.6]], [[0.5, 0.0], [0.0, 0.9]]]
)


def x_T_for(sde, n=32, seed=0):
    return sde.prior_std * torch.randn((n, 2), generator=torch.Generator().manual_seed(seed), dtype=f64)


@pytest.fixture(scope="module")
def pf_ode_reference():
    """x_T and the dopri5 (rtol = atol = 1e-10) endpoint at t_min of the VP probability-flow ODE."""
    from torchdiffeq import odeint

    sde = sk.VPSDE()
    model = SMOOTH.score_model(sde)
    x_T = x_T_for(sde)
    ts = torch.tensor([sde.T, sde.t_min], dtype=f64)
    exact = odeint(
        lambda t, x: probability_flow_drift(model, x, t)[0],
        x_T,
        ts,
        rtol=1e-10,
        atol=1e-10,
        method="dopri5",
        options=dict(step_t=ts),
    )[-1]
    return model, x_T, exact


ORDER_CASES = [  # (solver, options, expected order, step counts in the asymptotic regime)
    ("dpmpp_2m", {}, 2.0, [16, 32, 64]),
    ("dpmpp_3m", {"lower_order_final": False}, 3.0, [32, 64, 128]),
    ("unipc", {"variant": "bh1"}, 3.0, [32, 64, 128]),
    ("unipc", {"variant": "bh2"}, 3.0, [32, 64, 128]),
    ("unipc", {"variant": "bh2", "solver_order": 1}, 2.0, [32, 64, 128]),
    ("unipc", {"variant": "bh1", "solver_order": 3, "lower_order_final": False}, 4.0, [32, 64, 128]),
    ("dpmpp_2m_sde", {"eta": 0.0, "solver_type": "heun"}, 2.0, [16, 32, 64]),
    ("edm_heun", {}, 2.0, [16, 32, 64]),
]


@pytest.mark.parametrize(
    "name,options,order,steps",
    ORDER_CASES,
    ids=[f"{c[0]}-{'-'.join(f'{k}={v}' for k, v in c[1].items())}" for c in ORDER_CASES],
)
def test_convergence_order_on_the_exact_probability_flow_ode(pf_ode_reference, name, options, order, steps):
    model, x_T, exact = pf_ode_reference
    per_step = 2 if name == "edm_heun" else 1
    errors = []
    for n in steps:
        res = sk.sample(
            model, name, nfe=per_step * n - (1 if name == "edm_heun" else 0), x_T=x_T, progress=False, **options
        )
        assert res.n_steps == n
        errors.append(float((res.samples - exact).norm(dim=1).max()))
    slope = fitted_slope(steps, errors)
    assert abs(slope - order) < 0.3, f"{name} {options}: expected order {order}, fitted {slope:.2f}, errors {errors}"


def gaussian_endpoint(sde, mu, S, x_T):
    """The closed-form probability-flow ODE solution at t_min for a N(mu, diag S) target."""
    a_T, s_T = sde.marginal(torch.tensor(sde.T, dtype=f64))
    a_0, s_0 = sde.marginal(torch.tensor(sde.t_min, dtype=f64))
    return a_0 * mu + (a_0**2 * S + s_0**2).sqrt() / (a_T**2 * S + s_T**2).sqrt() * (x_T - a_T * mu)


DETERMINISTIC = [
    ("dpmpp_2m", {}, 2),
    ("dpmpp_3m", {}, 3),
    ("unipc", {}, 3),
    ("unipc", {"variant": "bh1"}, 3),
    ("edm_heun", {}, 2),
]


@pytest.mark.parametrize("sde_name", list(SDES))
@pytest.mark.parametrize(
    "name,options,order",
    DETERMINISTIC,
    ids=lambda v: str(v) if not isinstance(v, dict) else "-".join(f"{k}={w}" for k, w in v.items()) or "default",
)
def test_single_gaussian_endpoint_is_exact_up_to_the_order_error(sde_name, name, options, order):
    sde = SDES[sde_name]
    mu, S = torch.tensor([1.5, -0.5], dtype=f64), torch.tensor([0.3, 2.0], dtype=f64)
    model = sk.GaussianMixture([1.0], mu[None], S[None]).score_model(sde)
    x_T = x_T_for(sde)
    exact = gaussian_endpoint(sde, mu, S, x_T)
    errors = []
    for nfe in (80, 160):
        res = sk.sample(model, name, nfe=nfe, x_T=x_T, progress=False, **options)
        errors.append(float((res.samples - exact).norm(dim=1).max()))
    scale = float(exact.norm(dim=1).max())
    assert errors[1] < 0.02 * scale, f"{name} on {sde_name}: error {errors[1]:.2e} at NFE 160"
    # doubling the steps divides the error by about 2^order (at least 2^(order - 0.7))
    assert errors[1] < errors[0] / 2 ** (order - 0.7), (
        f"{name} on {sde_name}: errors {errors} do not fall at order {order}"
    )


def test_unipc_bh2_without_corrector_is_dpmpp_2m_and_so_is_the_sde_solver_at_eta_zero():
    model = ring2d().score_model(sk.VPSDE())
    x_T = x_T_for(model.sde, n=16)
    base = sk.sample(model, "dpmpp_2m", nfe=12, x_T=x_T, progress=False).samples
    unip = sk.sample(model, "unipc", nfe=12, x_T=x_T, progress=False, variant="bh2", corrector=False).samples
    ode_sde = sk.sample(model, "dpmpp_2m_sde", nfe=12, x_T=x_T, progress=False, eta=0.0).samples
    assert torch.allclose(unip, base, rtol=1e-12, atol=1e-12)
    assert torch.allclose(ode_sde, base, rtol=1e-12, atol=1e-12)
    # and the corrector changes the answer (it is not silently skipped)
    corrected = sk.sample(model, "unipc", nfe=12, x_T=x_T, progress=False, variant="bh2").samples
    assert (corrected - base).abs().max() > 1e-6


@pytest.mark.parametrize("name", FAST)
@pytest.mark.parametrize("nfe", [1, 2, 5, 6, 7, 10])
def test_nfe_reported_is_nfe_counted_and_multistep_solvers_spend_all_of_it(name, nfe):
    model = ring2d().score_model(sk.VPSDE())
    res = sk.sample(model, name, nfe=nfe, num_samples=8, seed=1, dtype=f64, progress=False)
    assert res.nfe == model.nfe <= nfe
    # a multistep solver takes nfe steps of one call; EDM Heun ceil(nfe / 2) steps of 2 calls, the last 1
    expected = nfe - (1 - nfe % 2) if name == "edm_heun" else nfe
    assert res.nfe == expected
    assert torch.isfinite(res.samples).all()


@settings(max_examples=15, deadline=None)
@given(
    name=st.sampled_from(FAST),
    nfe=st.integers(2, 30),
    denoise=st.booleans(),
    schedule=st.sampled_from(["uniform", "quadratic", "karras", "logsnr"]),
)
def test_nfe_budget_holds_for_every_budget_schedule_and_denoise_final(name, nfe, denoise, schedule):
    model = ring2d().score_model(sk.VESDE())
    res = sk.sample(
        model, name, nfe=nfe, num_samples=4, seed=0, dtype=f64, progress=False, schedule=schedule, denoise_final=denoise
    )
    assert res.nfe == model.nfe <= nfe
    assert res.nfe >= nfe - 1 and torch.isfinite(res.samples).all()


def test_edm_heun_with_denoise_final_needs_two_calls_and_says_so_before_any_call():
    model = ring2d().score_model(sk.VPSDE())
    with pytest.raises(sk.SolverError, match="nfe"):
        sk.sample(model, "edm_heun", nfe=1, num_samples=4, progress=False, denoise_final=True)
    assert model.nfe == 0


SAMPLERS = [
    ("dpmpp_2m", {}),
    ("dpmpp_3m", {}),
    ("unipc", {}),
    ("edm_heun", {}),
    ("dpmpp_2m_sde", {"eta": 1.0}),
    ("edm_heun", {"S_churn": 10.0}),
]


@pytest.mark.parametrize("sde_name", list(SDES))
@pytest.mark.parametrize(
    "name,options",
    SAMPLERS,
    ids=lambda v: str(v) if not isinstance(v, dict) else "-".join(f"{k}={w}" for k, w in v.items()) or "default",
)
def test_every_sde_gets_samples_near_the_exact_sample_floor(sde_name, name, options):
    mix = ring2d()
    model = mix.score_model(SDES[sde_name])
    stochastic = sk.get_solver(name, **options).capabilities().stochastic
    nfe = 100 if stochastic else 80  # 80: EDM Heun needs ~40 steps on the OU SDE's wide log-SNR range
    # one seed of 2000 samples: one draw of the ring's unequal component counts moves SW2 by up to ~30%
    res = sk.sample(model, name, nfe=nfe, num_samples=2000, seed=0, dtype=f64, progress=False, **options)
    assert res.nfe == model.nfe <= nfe
    got, floor = distance_and_floor(res.samples, mix, repeats=4)
    assert got <= 1.5 * floor, f"{name} {options} on {sde_name}: SW2 {got:.4f} vs floor {floor:.4f}"


def test_edm_heun_declares_churn_stochastic_and_churn_is_reproducible_by_seed():
    assert sk.get_solver("edm_heun").capabilities().stochastic is False
    assert sk.get_solver("edm_heun", S_churn=5.0).capabilities().stochastic is True
    model = ring2d().score_model(sk.VPSDE())
    runs = [
        sk.sample(model, "edm_heun", nfe=21, num_samples=16, seed=s, dtype=f64, progress=False, S_churn=5.0).samples
        for s in (3, 3, 4)
    ]
    assert torch.equal(runs[0], runs[1]) and not torch.allclose(runs[0], runs[2])


@pytest.mark.parametrize("name", FAST)
def test_float32_in_float32_out(name):
    model = ring2d().score_model(sk.VPSDE())
    res = sk.sample(model, name, nfe=10, num_samples=16, seed=0, dtype=torch.float32, progress=False)
    assert res.samples.dtype == torch.float32 and torch.isfinite(res.samples).all()


@pytest.mark.parametrize(
    "name,options,word",
    [
        ("unipc", {"variant": "bh3"}, "variant"),
        ("unipc", {"solver_order": 4}, "solver_order"),
        ("dpmpp_2m_sde", {"eta": -1.0}, "eta"),
        ("dpmpp_2m_sde", {"solver_type": "rk4"}, "solver_type"),
        ("edm_heun", {"S_churn": -1.0}, "S_churn"),
        ("edm_heun", {"S_tmin": 2.0, "S_tmax": 1.0}, "S_tmin"),
        ("edm_heun", {"S_noise": 0.0}, "S_noise"),
        ("dpmpp_2m", {"variant": "bh1"}, "variant"),
    ],
)
def test_bad_options_fail_with_an_error_naming_the_option(name, options, word):
    with pytest.raises(sk.SolverError, match=word):
        sk.get_solver(name, **options)
