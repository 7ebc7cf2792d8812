"""sk.optimize_schedule and the cached ``optimized`` schedule on a single Gaussian, whose probability-flow
map is closed-form: per eigen-direction x_t = alpha_t mu + sqrt(v_t / v_T) (x_T - alpha_T mu),
v_t = alpha_t^2 c + sigma_t^2."""

from __future__ import annotations

import json

import pytest
import torch

import samplekit as sk
from samplekit.errors import SamplekitError
from samplekit.plugins import get_registry
from samplekit.solver import resolve_solver
from samplekit.timegrid import make_grid

MU = torch.tensor([0.5, -1.0], dtype=torch.float64)
VAR = torch.tensor([0.05**2, 0.3**2], dtype=torch.float64)
SDE = sk.VPSDE()
TARGET = sk.GaussianMixture(torch.tensor([1.0]), MU[None], torch.diag(VAR)[None])


def exact_flow(x_T):
    a, s = SDE.marginal(torch.tensor(SDE.t_min, dtype=torch.float64))
    aT, sT = SDE.marginal(torch.tensor(SDE.T, dtype=torch.float64))
    return a * MU + torch.sqrt((a * a * VAR + s * s) / (aT * aT * VAR + sT * sT)) * (x_T - aT * MU)


def fast_deterministic():
    out = []
    for info in sk.available("solver"):
        caps = sk.get_solver(info.name).capabilities()
        if info.plugin == "samplekit_fast" and not caps.stochastic and not caps.adaptive and caps.order >= 2:
            out.append(info.name)
    return out


class CountingNet:
    """The raw network, counting its own calls (the model's nfe is not trusted here)."""

    def __init__(self, net):
        self.net, self.calls = net, 0

    def __call__(self, x, t):
        self.calls += 1
        return self.net(x, t)


def held_out_error(model, solver, ts, x_T):
    out = sk.sample(model, solver, x_T=x_T, ts=ts, progress=False).samples
    return float(((out - exact_flow(x_T)) ** 2).sum(1).mean())


@pytest.mark.parametrize("solver", fast_deterministic())
def test_optimized_beats_uniform_karras_logsnr(solver):
    model = TARGET.score_model(SDE)
    x_T = SDE.prior_sample((256, 2), generator=torch.Generator().manual_seed(999), dtype=torch.float64)
    solver_obj = resolve_solver(solver, {})
    per_step = solver_obj.capabilities().nfe_per_step
    for steps in (4, 6, 10):
        nfe = steps * per_step
        n = solver_obj.plan(nfe).n_steps  # dpm_fast plans its own step count for a budget
        cap = 12 * nfe + 150
        ts, report = sk.optimize_schedule(model, solver, nfe, num_samples=32, seed=1, max_nfe=cap, return_report=True)
        assert ts.shape == (n + 1,) and ts.dtype == torch.float64 and bool((ts[1:] < ts[:-1]).all())
        assert float(ts[0]) == SDE.T and float(ts[-1]) == SDE.t_min
        assert report.nfe_spent <= cap and report.loss <= report.start_loss
        ours = held_out_error(model, solver, ts, x_T)
        for name in ("uniform", "karras", "logsnr"):
            grid = make_grid(resolve_solver(solver, {"schedule": name}), model, n)
            theirs = held_out_error(model, solver, grid, x_T)
            assert ours < theirs, (solver, n, name, ours, theirs)


def test_cost_is_counted_at_the_network_and_bounded():
    counter = CountingNet(TARGET.score_model(SDE).net)
    model = sk.ScoreModel.from_score(counter, SDE, (2,))
    ts, report = sk.optimize_schedule(model, "dpmpp_2m", 5, num_samples=32, max_nfe=250, return_report=True)
    assert report.nfe_spent == counter.calls and counter.calls <= 250
    assert report.evaluations >= 4  # the starting schedules at least


def test_cache_returns_the_grid_without_calling_the_network(tmp_path):
    counter = CountingNet(TARGET.score_model(SDE).net)
    model = sk.ScoreModel.from_score(counter, SDE, (2,))
    options = {"model": model, "solver": "dpmpp_2m", "num_samples": 16, "max_nfe": 300, "cache_dir": str(tmp_path)}
    first = sk.sample(
        model,
        "dpmpp_2m",
        nfe=5,
        num_samples=8,
        schedule="optimized",
        schedule_options=options,
        progress=False,
        dtype=torch.float64,
    )
    files = list((tmp_path / "schedules").glob("*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["nfe_spent"] > 0
    calls = counter.calls
    optimized = get_registry().get("schedule", "optimized").factory
    again = optimized(SDE, 5, **options)
    assert counter.calls == calls  # a cache hit calls the network not at all
    torch.testing.assert_close(again, first.ts, rtol=0, atol=0)
    # another key: other solver options, other step count, other weights
    optimized(SDE, 4, **options)
    assert len(list((tmp_path / "schedules").glob("*.json"))) == 2
    other = sk.GaussianMixture(torch.tensor([1.0]), MU[None] + 0.1, torch.diag(VAR)[None]).score_model(SDE)
    from samplekit_schedules.optimized import fingerprint

    assert fingerprint(model, SDE, "dpmpp_2m", 5, {}) != fingerprint(other, SDE, "dpmpp_2m", 5, {})
    assert fingerprint(model, SDE, "dpmpp_2m", 5, {}) != fingerprint(model, sk.VPSDE(beta_max=19.0), "dpmpp_2m", 5, {})
    assert fingerprint(model, SDE, sk.get_solver("unipc", variant="bh1"), 5, {}) != fingerprint(
        model, SDE, sk.get_solver("unipc", variant="bh2"), 5, {}
    )


def test_env_var_moves_the_cache(tmp_path, monkeypatch):
    from samplekit_schedules.optimized import default_cache_dir

    monkeypatch.setenv("SAMPLEKIT_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("SAMPLEKIT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x" / "samplekit"


def test_stochastic_solver_is_optimised_on_its_own_distributional_error():
    model = TARGET.score_model(SDE)
    ts, report = sk.optimize_schedule(
        model, "euler_ancestral", 6, num_samples=256, seed=3, max_nfe=800, return_report=True
    )
    assert "sliced W2" in report.objective and report.loss <= report.start_loss
    # held out: fresh noise and x_T, exact samples of p_{t_min}; the grid is no worse than the best start
    a, s = SDE.marginal(torch.tensor(SDE.t_min, dtype=torch.float64))
    ref = a * TARGET.sample(4000, generator=torch.Generator().manual_seed(5)) + s * torch.randn(
        4000, 2, generator=torch.Generator().manual_seed(6), dtype=torch.float64
    )

    def w2(grid):
        out = sk.sample(
            model, "euler_ancestral", ts=grid, num_samples=4000, seed=7, progress=False, dtype=torch.float64
        ).samples
        return float(sum(((out[:, i].sort().values - ref[:, i].sort().values) ** 2).mean() for i in range(2)))

    start = make_grid(resolve_solver("euler_ancestral", {"schedule": report.start}), model, 6)
    assert w2(ts) < w2(start)


def test_bad_input_before_any_call():
    counter = CountingNet(TARGET.score_model(SDE).net)
    model = sk.ScoreModel.from_score(counter, SDE, (2,))
    with pytest.raises(SamplekitError, match="adaptive"):
        sk.optimize_schedule(model, "ode_dopri5", 10)
    with pytest.raises(SamplekitError, match="nfe"):
        sk.optimize_schedule(model, "dpm_2", 1)
    with pytest.raises(SamplekitError, match="num_samples"):
        sk.optimize_schedule(model, "dpmpp_2m", 5, num_samples=1)
    with pytest.raises(SamplekitError, match="schedule_options"):
        sk.sample(model, "dpmpp_2m", nfe=5, schedule="optimized", progress=False)
    assert counter.calls == 0
