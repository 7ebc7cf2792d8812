"""The solver contract the core enforces: the plan, the metered cap (counted at the network), old-contract
refusals, declared option checks, plugin faults named, and callback/progress for adaptive solvers."""

from __future__ import annotations

from typing import Annotated, Literal

import pytest
import torch

import samplekit as sk
from samplekit.errors import BudgetExceededError, PluginSolverError, SolverError
from samplekit.options import Ge, Gt
from samplekit.plugins import get_registry
from samplekit.registry import ComponentInfo, Registry
from samplekit.reverse import probability_flow_drift
from samplekit.solver import Plan, Solver
from samplekit.targets import ring2d

f64 = torch.float64


class Counted:
    """A network that counts its own calls (the count the core's meter is checked against)."""

    def __init__(self, model):
        self.model, self.calls = model, 0

    def __call__(self, x, t):
        self.calls += 1
        return self.model(x, t)


def counted_model(sde=None):
    sde = sde or sk.VPSDE()
    net = Counted(ring2d().score_model(sde))
    return sk.ScoreModel.from_score(net, sde, (2,)), net


class ThreeCallsEuler(Solver):
    """Declares one call a step but makes three (a plugin's bookkeeping bug)."""

    name = "three_calls_euler"

    def step(self, model, i, t0, t1, x, state, noise, plan):
        for _ in range(2):
            model.predict(x, t0)
        drift, pred = probability_flow_drift(model, x, t0)
        return x - (t0 - t1) * drift, state, pred.x0


def test_a_solver_making_three_calls_a_step_is_stopped_at_the_cap():
    model, net = counted_model()
    with pytest.raises(BudgetExceededError, match=r"step 1 of 5 .*three_calls_euler.*would exceed max_nfe=5"):
        sk.sample(model, ThreeCallsEuler(), nfe=5, num_samples=4, progress=False)
    assert net.calls == 5  # counted at the network: never a call past the cap


def test_adaptive_solver_under_guidance_never_passes_the_cap_counted_at_the_network():
    sde = sk.VPSDE()
    cond, c1 = counted_model(sde)
    uncond, c2 = counted_model(sde)
    guided = sk.guidance.classifier_free(cond, uncond, scale=2.0)
    for solver, options in (
        ("dpm_adaptive", {"rtol": 1e-6, "atol": 1e-6}),
        ("ode_dopri5", {"rtol": 1e-7, "atol": 1e-7}),
    ):
        for cap in (7, 31, 40):
            c1.calls = c2.calls = 0
            with pytest.raises(BudgetExceededError, match=f"max_nfe={cap}"):
                sk.sample(guided, solver, nfe=cap, num_samples=4, progress=False, **options)
            assert c1.calls + c2.calls <= cap, (solver, cap)


def test_adaptive_denoise_final_keeps_its_evaluation_within_the_cap():
    model, net = counted_model()
    res = sk.sample(model, "dpm_adaptive", nfe=10_000, num_samples=4, progress=False, denoise_final=True)
    assert res.nfe == net.calls
    net.calls = 0
    with pytest.raises(BudgetExceededError):
        sk.sample(model, "dpm_adaptive", nfe=res.nfe - 1, num_samples=4, progress=False, denoise_final=True)
    assert net.calls <= res.nfe - 2  # the solve stopped one evaluation short, keeping it for the denoise


@pytest.mark.parametrize("name", ["dpm_fast", "restart", "edm_heun", "sde_reversible_heun", "euler_maruyama"])
def test_plan_is_pure_and_interleaved_runs_give_the_same_numbers(name):
    solver = sk.get_solver(name)
    before = dict(vars(solver))
    p30, p64 = solver.plan(30), solver.plan(64)
    assert vars(solver) == before and solver.plan(30) == p30 and p30 != p64
    model = ring2d().score_model(sk.VPSDE())

    def run(nfe):
        return sk.sample(model, solver, nfe=nfe, num_samples=8, seed=3, dtype=f64, progress=False).samples

    alone30, alone64 = run(30), run(64)
    assert torch.equal(run(64), alone64) and torch.equal(run(30), alone30)
    fresh = sk.sample(model, name, nfe=30, num_samples=8, seed=3, dtype=f64, progress=False).samples
    assert torch.equal(fresh, alone30)


def test_plan_carries_the_budget_and_guidance_calls():
    plan = sk.get_solver("ode_heun").plan(21, calls_per_eval=2)
    assert plan == Plan(n_steps=5, nfe=21, calls_per_eval=2)
    fast = sk.get_solver("dpm_fast").plan(10)
    assert fast.per_step == (3, 3, 3, 1) and fast.n_steps == 4


class OldStepsFor(Solver):
    name = "old_steps_for"

    def steps_for(self, nfe):
        return nfe

    def step(self, model, i, t0, t1, x, state, noise, plan):
        return x, state, None


class OldStep(Solver):
    name = "old_step"

    def step(self, model, i, t0, t1, x, state, noise):
        return x, state, None


class OldAdaptive(Solver):
    name = "old_adaptive"
    adaptive = True

    def solve(self, model, x, noise, max_nfe):
        return x


@pytest.mark.parametrize(
    "cls,word", [(OldStepsFor, "steps_for"), (OldStep, r"step\(\) must take the plan"), (OldAdaptive, "solve")]
)
def test_old_contract_is_refused_at_registration_and_build_naming_the_change(cls, word):
    registry = Registry()

    def hook(register):
        register(cls)

    assert not registry.load_plugin("old_plugin", [("solver", hook)])
    assert "old solver contract" in registry.failures[0].error and "samplekit.solver" in registry.failures[0].error
    with pytest.raises(SolverError, match=word):
        sk.sample(ring2d().score_model(sk.VPSDE()), cls(), nfe=5, num_samples=2, progress=False)


class Raising(Solver):
    name = "raising"

    def step(self, model, i, t0, t1, x, state, noise, plan):
        if i == 2:
            raise ZeroDivisionError("oops")
        return x, state, None


class ReturnsNone(Solver):
    name = "returns_none"

    def step(self, model, i, t0, t1, x, state, noise, plan):
        return None


class WrongShape(Solver):
    name = "wrong_shape"

    def step(self, model, i, t0, t1, x, state, noise, plan):
        return x[:, :1], state, None


class Float64(Solver):
    name = "float64_steps"

    def step(self, model, i, t0, t1, x, state, noise, plan):
        return x.to(f64), state, None


@pytest.mark.parametrize(
    "cls,pattern",
    [
        (Raising, r"step 2 of 5 .* of solver 'raising' .* raised ZeroDivisionError: oops"),
        (ReturnsNone, r"step 0 of 5 .*'returns_none'.* returned None; step\(\) must return a tuple"),
        (WrongShape, r"'wrong_shape'.*returned x of shape \(4, 1\)"),
        (Float64, r"'float64_steps'.*torch.float64.*torch.float32"),
    ],
)
def test_plugin_step_faults_are_one_error_naming_the_solver_and_step(cls, pattern):
    with pytest.raises(PluginSolverError, match=pattern):
        sk.sample(ring2d().score_model(sk.VPSDE()), cls(), nfe=5, num_samples=4, progress=False)


def test_a_registered_plugin_solver_is_named_with_its_plugin(monkeypatch):
    registry = get_registry()
    monkeypatch.setitem(
        registry._components["solver"], "raising", ComponentInfo("solver", "raising", "toy_plugin", Raising)
    )
    with pytest.raises(PluginSolverError, match=r"step 2 of 5 .* of solver 'raising' \(plugin 'toy_plugin'\) raised"):
        sk.sample(ring2d().score_model(sk.VPSDE()), "raising", nfe=5, num_samples=4, progress=False)


class Declared(Solver):
    name = "declared"

    def __init__(
        self,
        mode: Literal["fast", "exact"] = "fast",
        gain: Annotated[float, Ge(0)] = 1.0,
        width: Annotated[int, Gt(1)] = 3,
        **base,
    ) -> None:
        super().__init__(**base)
        self.mode, self.gain, self.width = mode, gain, width


@pytest.mark.parametrize(
    "options,pattern",
    [
        ({"mode": "slow"}, r"option mode='slow' must be one of 'fast', 'exact'"),
        ({"gain": -0.5}, r"option gain=-0.5 must be >= 0"),
        ({"width": 1}, r"option width=1 must be > 1"),
        ({"width": 2.5}, r"option width=2.5 must be an int"),
    ],
)
def test_literal_and_annotated_options_are_checked_before_the_solver_is_built(options, pattern):
    with pytest.raises(SolverError, match=pattern):
        Declared(**options)
    described = Declared.describe()["options"]
    assert described["mode"]["choices"] == ["fast", "exact"] and described["gain"]["range"] == ">= 0"


def test_builtin_options_show_choices_and_ranges_and_order_is_renamed():
    info = get_registry().get("solver", "unipc").info["options"]
    assert info["solver_order"]["choices"] == [1, 2, 3] and info["variant"]["choices"] == ["bh1", "bh2"]
    assert get_registry().get("solver", "dpm_adaptive").info["options"]["h_init"]["range"] == "> 0 and finite"
    with pytest.raises(SolverError, match=r"has no option 'order' \(did you mean 'solver_order'\?\)"):
        sk.get_solver("lms", order=3)
    with pytest.raises(SolverError, match="solver_order=5 must be one of 1, 2, 3, 4"):
        sk.get_solver("lms", solver_order=5)


@pytest.mark.parametrize("name", ["dpm_adaptive", "ode_dopri5", "ode_bosh3"])
def test_adaptive_solvers_report_each_accepted_step_to_callback_and_progress(name, capsys):
    model = ring2d().score_model(sk.VPSDE())
    seen = []
    res = sk.sample(model, name, num_samples=8, seed=0, dtype=f64, progress=True, callback=seen.append)
    assert len(seen) >= 2 and all(info.n_steps is None for info in seen)
    assert [info.step for info in seen] == list(range(len(seen)))
    assert seen[0].t == pytest.approx(model.sde.T) and seen[-1].t_next == pytest.approx(model.sde.t_min)
    assert all(a.t_next == pytest.approx(b.t) for a, b in zip(seen, seen[1:]))  # contiguous steps
    assert torch.equal(seen[-1].x, res.samples) and seen[-1].nfe == res.nfe
    assert "step" in capsys.readouterr().err  # the progress bar counted the accepted steps
