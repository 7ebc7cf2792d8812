"""No host synchronisation in the step loop: reads of the samples' data on the host (bool, item, float,
int, tolist, cpu, numpy on tensors computed from x_T; counted by a tensor subclass, tests/sync_count.py)
do not grow with the number of steps, for every registered fixed-step solver; the errors a per-step
check gave (first bad step and t) are unchanged."""

from __future__ import annotations

import gc

import pytest
import torch

import samplekit as sk
from samplekit import finite
from samplekit.targets import ring2d
from sync_count import Tracked, count_syncs

FIXED_STEP = [i.name for i in sk.available("solver") if not sk.get_solver(i.name).capabilities().adaptive]


def _syncs(model, solver: str, nfe: int) -> tuple[int, int]:
    out = {}

    def run(x):
        out["res"] = sk.sample(model, solver, nfe=nfe, x_T=x, seed=0, progress=False)

    return count_syncs(run, torch.randn(6, 2, dtype=torch.float64)), out["res"].n_steps


@pytest.mark.parametrize("solver", FIXED_STEP)
def test_host_syncs_do_not_grow_with_nfe(solver):
    model = ring2d().score_model(sk.VPSDE())
    few, steps_few = _syncs(model, solver, 12)
    many, steps_many = _syncs(model, solver, 36)
    assert steps_many > steps_few
    assert many == few <= 2, (few, many, Tracked.counts)  # x_T's finiteness check and the end-of-run flag


def test_a_network_module_samples_without_host_syncs():
    """A torch.nn network (eps parametrisation) through ScoreModel.network_output: still no per-step read."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.SiLU(), torch.nn.Linear(16, 2)).double()
    model = sk.ScoreModel.from_eps(lambda x, t: net(x) * 0.1 + 0 * t[:, None], sk.VPSDE(), (2,))
    counts = [_syncs(model, "dpmpp_2m", nfe)[0] for nfe in (8, 32)]
    assert counts[0] == counts[1] <= 2, counts


def test_the_counter_sees_a_host_read():
    """The counter is not blind: the per-call check this work removed is counted."""
    assert count_syncs(lambda x: bool(torch.isfinite(x * 2).all()), torch.ones(3)) == 1
    assert count_syncs(lambda x: float((x + 1).sum()), torch.ones(3)) == 1


def test_first_bad_step_is_named_even_if_a_later_step_fails_otherwise():
    """NaN from the network at evaluation 3 (step 2); a callback then fails at step 5: the error raised
    is the NaN one, naming step 2 and its t, as a per-step check would have."""
    calls = []

    def flaky(x, t):
        calls.append(1)
        return x * float("nan") if len(calls) == 3 else x

    def callback(info):
        if info.step == 5:
            raise RuntimeError("late failure")

    model = sk.ScoreModel.from_eps(flaky, sk.VPSDE(), (2,), name="flaky")
    with pytest.raises(sk.NonFiniteError, match=r"step 2 of 10 \(t=0.8002 -> 0.7003\).*'flaky' returned NaN/Inf"):
        sk.sample(model, "euler_maruyama", nfe=10, num_samples=4, progress=False, callback=callback)


def test_a_step_result_overflowing_is_named_with_its_step():
    """The network is finite but a step overflows (float32, a huge eps at one step): that step is named."""
    calls = []

    def blows(x, t):
        calls.append(1)
        return x * 1e38 if len(calls) == 4 else x

    model = sk.ScoreModel.from_eps(blows, sk.VPSDE(), (2,), name="blows")
    message = r"step 3 of 10 \(t=0.803652 -> 0.710757\) of solver 'ode_euler' produced NaN/Inf"
    with pytest.raises(sk.NonFiniteError, match=message):
        sk.sample(model, "ode_euler", nfe=10, num_samples=4, progress=False)


def _live_tensors() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if issubclass(type(o), torch.Tensor))


@pytest.mark.parametrize("solver", ["euler_maruyama", "dpmpp_2m", "ode_heun"])
def test_the_deferred_checks_keep_constant_objects_per_run(solver):
    """The run keeps O(1) check objects: at the last step the flag holds the same sites, and the process
    the same number of live tensors, after 10 steps as after 200 (per-step flags kept 3 objects a step)."""
    model = ring2d().score_model(sk.VPSDE())
    seen = {}

    def callback(info):
        if info.step == info.n_steps - 1:
            flag = finite.active()
            seen[info.n_steps] = (len(flag._makers), _live_tensors())

    for nfe in (20, 400):
        sk.sample(model, solver, nfe=nfe, num_samples=4, progress=False, callback=callback, seed=0)
    (few, many) = seen.values()
    assert few == many and few[0] <= 3, seen


def test_a_bad_time_inside_a_step_is_named_with_its_step_and_t():
    """A solver plugin asking the network for a t outside [t_min, T] at step 4: deferred, then named (step, t)."""

    class Overshoot(sk.Solver):
        name = "overshoot_probe"
        order, stochastic, adaptive, nfe_per_step = 1, False, False, 1

        def step(self, model, i, t0, t1, x, state, noise, plan):
            t = t0 * (20.0 if i == 4 else 1.0)
            return x - (t1 - t0) * model(x, t).to(x.dtype), state, x

    model = ring2d().score_model(sk.VPSDE())
    with pytest.raises(sk.SamplekitError, match=r"step 4 of 8 .*t=1[0-9.]+ lies outside \[t_min, T\]"):
        sk.sample(model, Overshoot(), nfe=8, num_samples=3, progress=False)
