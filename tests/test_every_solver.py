"""Every registered solver, parametrized from the registry (not a hand-kept list), against exact answers.

1. With the exact score of the 2-D ring and a generous budget, each solver's samples are within
   1.5x of the exact-sample noise floor in sliced W2, on a VP and a VE SDE where it supports both.
2. Each fixed-step deterministic solver converges at its declared order: the terminal error against
   a tight-tolerance dopri5 solution of the same probability-flow ODE from the same x_T falls as
   (step count)^-order (log-log regression, as diffrax's ``test_ode_order``).
3. The NFE a run reports is the number of network calls it made, and at most the budget.
"""

from __future__ import annotations

import math

import pytest
import torch

import samplekit as sk
from samplekit.targets import ring2d

from exact_checks import distance_and_floor

f64 = torch.float64
SOLVERS = sorted(sk.available("solver"), key=lambda c: c.name)
SDES = {"vp": sk.VPSDE(), "ve": sk.VESDE()}


def families(info) -> list[str]:
    return list(info.info.get("sde_families") or ("vp", "ve"))


def generous(info) -> dict:
    """A budget at which every correct solver of its kind has converged on the ring."""
    if info.info.get("adaptive"):
        return {"nfe": 20000, "rtol": 1e-6, "atol": 1e-6}
    return {"nfe": 1000 if info.info.get("stochastic") else 200}


@pytest.mark.parametrize("family", ["vp", "ve"])
@pytest.mark.parametrize("info", SOLVERS, ids=lambda c: c.name)
def test_every_solver_reaches_the_exact_sample_noise_floor(info, family):
    """SW2 within 1.5x of the floor, averaged over 3 independent sets of 2000 samples.

    One set's SW2 fluctuates with its component counts: the exact probability-flow transport of one
    4000-point prior draw scored 1.50x the floor (others 0.80x, 1.01x), so a single set leaves an exact
    solver no margin; averaging three sets cuts that spread by sqrt(3).
    """
    if family not in families(info):
        pytest.skip(f"{info.name} declares sde_families={families(info)}; the {family} case is its refusal test")
    if not info.info.get("samples_target", True):
        pytest.skip(f"{info.name} declares samples_target=False (a baseline); its own tests prove its law")
    mix = ring2d()
    model = mix.score_model(SDES[family])
    res = sk.sample(model, info.name, num_samples=6000, seed=0, dtype=f64, progress=False, **generous(info))
    assert res.nfe == model.nfe
    pairs = [distance_and_floor(chunk, mix, seed=123 + k) for k, chunk in enumerate(res.samples.chunk(3))]
    got, floor = (sum(p[i] for p in pairs) / 3 for i in (0, 1))
    assert got <= 1.5 * floor, f"{info.name} on {family}: SW2 {got:.4f} vs floor {floor:.4f} at NFE {res.nfe}"


class VEOnlyEuler(sk.Solver):
    """A solver that declares VE-type SDEs only (every registered solver handles both today)."""

    name, sde_families = "ve_only_euler", ("ve",)

    def step(self, model, i, t0, t1, x, state, noise):
        raise AssertionError("a refused solver must not step")


def test_a_solver_refuses_the_sde_families_it_does_not_declare_before_any_network_call():
    model = ring2d().score_model(SDES["vp"])
    with pytest.raises(sk.SolverError, match=r"ve_only_euler.*does not support VPSDE.*vp-type"):
        sk.sample(model, VEOnlyEuler(), nfe=50, num_samples=4, progress=False)
    assert model.nfe == 0


DETERMINISTIC = [c for c in SOLVERS if not c.info.get("stochastic") and not c.info.get("adaptive")]
# A smooth target (two broad components), so the probability-flow ODE is smooth down to t_min.
SMOOTH = sk.GaussianMixture([0.4, 0.6], [[-1.0, 0.5], [1.0, -0.5]],
                            [[[0.8, 0.2], [0.2, 0.6]], [[0.5, 0.0], [0.0, 0.9]]])


def reference_endpoint(model, x_T):
    """x at t_min on the probability-flow ODE from x_T, by dopri5 at rtol = atol = 1e-11."""
    return sk.decode(model, x_T, method="dopri5", rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("info", DETERMINISTIC, ids=lambda c: c.name)
def test_every_deterministic_solver_converges_at_its_declared_order(info):
    order, per_step = float(info.info["order"]), int(info.info.get("nfe_per_step", 1))
    sde = sk.VPSDE()
    model = SMOOTH.score_model(sde)
    x_T = sde.prior_sample((64, 2), torch.Generator().manual_seed(0), dtype=f64)
    exact = reference_endpoint(model, x_T)
    steps = [24, 48, 96, 192] if order < 2.5 else [12, 24, 48, 96]
    errors = []
    for n in steps:
        res = sk.sample(model, info.name, nfe=n * per_step, x_T=x_T, progress=False)
        errors.append(float((res.samples - exact).norm(dim=1).max()))
    logs = torch.tensor([[math.log(n), math.log(e)] for n, e in zip(steps, errors)], dtype=f64)
    slope = -torch.cov(logs.T)[0, 1] / logs[:, 0].var()
    assert order - 0.3 <= slope <= order + 0.8, f"{info.name}: declared order {order}, fitted {slope:.2f}, errors {errors}"


@pytest.mark.parametrize("info", [c for c in SOLVERS if not c.info.get("adaptive")], ids=lambda c: c.name)
@pytest.mark.parametrize("nfe", [5, 7, 12])
def test_nfe_reported_is_nfe_counted_and_within_budget(info, nfe):
    family = families(info)[0]
    model = ring2d().score_model(SDES[family])
    try:
        res = sk.sample(model, info.name, nfe=nfe, num_samples=8, seed=1, dtype=f64, progress=False)
    except sk.SolverError as exc:  # a budget too small for the solver must say so and name nfe
        assert "nfe" in str(exc)
        assert model.nfe == 0, "the budget check must come before any network call"
        return
    assert res.nfe == model.nfe <= nfe
    assert res.samples.shape == (8, 2) and torch.isfinite(res.samples).all()
