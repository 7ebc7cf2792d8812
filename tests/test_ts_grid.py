"""``sk.sample(..., ts=grid)``: a user's grid of model times, used as given (issue 12, item 1; issue 11, item 5)."""

from __future__ import annotations

import pytest
import torch

import samplekit as sk
from conditional_nets import CountingNet
from samplekit.targets import ring2d
from samplekit.timegrid import make_grid

f64 = torch.float64
SDE = sk.VPSDE()
MIX = ring2d()


def counted_model(sde=SDE):
    net = CountingNet(lambda x, t: MIX.noised_score(x, *sde.marginal(t)))
    return net, sk.ScoreModel.from_score(net, sde, (2,))


def test_the_grid_is_used_as_given_and_returned():
    net, model = counted_model()
    ts = torch.tensor([1.0, 0.7, 0.3, 0.1, 0.02, 1e-3], dtype=f64)
    seen = []
    res = sk.sample(
        model,
        "ode_heun",
        ts=ts,
        num_samples=8,
        seed=0,
        progress=False,
        callback=lambda info: seen.append((info.t, info.t_next)),
    )
    assert res.ts is ts and res.n_steps == 5
    assert seen == [(float(a), float(b)) for a, b in zip(ts[:-1], ts[1:])]
    assert res.nfe == net.calls == 10  # derived from the grid: 2 calls a step


def test_a_grid_equal_to_the_schedule_gives_the_same_samples():
    _, model = counted_model()
    solver = sk.get_solver("dpmpp_2m")
    ts = make_grid(solver, model, 12)
    a = sk.sample(model, "dpmpp_2m", nfe=12, num_samples=16, seed=3, dtype=f64, progress=False).samples
    b = sk.sample(model, "dpmpp_2m", ts=ts, num_samples=16, seed=3, dtype=f64, progress=False).samples
    assert torch.equal(a, b)


def test_the_budget_check_uses_the_grid_length_before_any_call():
    net, model = counted_model()
    ts = torch.linspace(1.0, 1e-3, 11, dtype=f64)
    with pytest.raises(sk.SolverError, match=r"nfe=15 is too small for ts with 10 steps.*= 20"):
        sk.sample(model, "ode_heun", ts=ts, nfe=15, num_samples=4, progress=False)
    assert net.calls == 0
    res = sk.sample(model, "ode_heun", ts=ts, nfe=25, num_samples=4, progress=False)
    assert res.nfe == net.calls == 20


def test_a_grid_that_starts_below_T_starts_there():
    net, model = counted_model()
    ts = torch.linspace(0.5, 1e-3, 6, dtype=f64)
    res = sk.sample(model, "ddim", ts=ts, num_samples=4, progress=False)
    assert res.nfe == net.calls == 5 and float(res.ts[0]) == 0.5


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.tensor([0.5, 0.7, 0.1], dtype=f64), "strictly decreasing"),
        (torch.tensor([[1.0, 0.5]], dtype=f64), "1-D grid"),
        (torch.tensor([1.0], dtype=f64), "1-D grid of at least 2"),
        (torch.tensor([1.0, float("nan"), 0.1], dtype=f64), "NaN"),
        (torch.tensor([2.0, 0.5, 0.1], dtype=f64), r"outside \[t_min, T\]"),
        (torch.tensor([1.0, 0.5, 1e-6], dtype=f64), r"outside \[t_min, T\]"),
    ],
)
def test_a_bad_grid_is_a_clear_error_naming_ts(bad, match):
    net, model = counted_model()
    with pytest.raises((ValueError, TypeError), match=match) as info:
        sk.sample(model, "ddim", ts=bad, num_samples=4, progress=False)
    assert "ts" in str(info.value)
    assert net.calls == 0


def test_an_adaptive_solver_refuses_a_grid():
    net, model = counted_model()
    with pytest.raises(sk.SolverError, match="adaptive"):
        sk.sample(model, "ode_dopri5", ts=torch.linspace(1.0, 1e-3, 5, dtype=f64), num_samples=4, progress=False)
    assert net.calls == 0


def test_a_grid_from_T_works_under_rectified_flow():
    rf = sk.get_sde("rectified_flow")
    model = MIX.score_model(rf)
    res = sk.sample(
        model,
        "unipc",
        ts=torch.linspace(1.0, rf.t_min, 31, dtype=f64),
        num_samples=64,
        seed=0,
        dtype=f64,
        progress=False,
    )
    assert torch.isfinite(res.samples).all() and res.nfe == 30


def test_time_of_maps_training_timesteps_of_a_discrete_vp():
    sde = sk.DiscreteVPSDE.from_vp(SDE, 1000)
    n = torch.tensor([0.0, 499.0, 999.0], dtype=f64)
    t = sde.time_of(n)
    assert torch.allclose(t, (n + 1) / 1000) and torch.equal(sde.timestep(t), n)
    assert float(t[-1]) == sde.T and float(t[0]) == sde.t_min
