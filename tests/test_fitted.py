"""sk.fit_solver and fitted samplers: exact steps at default parameters, the fit, the file, the cache,
the refusals and the fallbacks (issue 24)."""

from __future__ import annotations

import warnings

import pytest
import torch
from click.testing import CliRunner

import samplekit as sk
from samplekit import fitted as fitted_module
from samplekit.fitted import FitFallbackWarning, FitResult, FittedSampler, FittedSamplerError, fit_loss
from samplekit.score import ScoreModel
from samplekit.timegrid import make_grid
from samplekit_fitted.directions import ParallelDirections, plan
from samplekit_fitted.multistep import LearnedMultistep, adams_bashforth
from samplekit_fitted.training import Fitter, grid_of, logits_of
from tests.conditional_nets import CountingNet

SDES = ("vp", "edm", "rectified_flow")


def mixture(shift: float = 0.0) -> sk.GaussianMixture:
    means = torch.tensor([[-2.0, 0.5], [1.5, -1.0], [0.5 + shift, 2.0]], dtype=torch.float64)
    covs = torch.stack([torch.eye(2, dtype=torch.float64) * v for v in (0.05, 0.2, 0.1)])
    return sk.GaussianMixture(torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64), means, covs)


def counted(target: sk.GaussianMixture, sde) -> tuple[ScoreModel, CountingNet]:
    """The exact model with its network calls counted at the network."""
    if sde.alpha_T_is_zero:
        net = CountingNet(lambda x, t: target.noised_denoiser(x, *sde.marginal(t)))
        return ScoreModel.from_denoiser(net, sde, (2,)), net
    net = CountingNet(lambda x, t: target.noised_score(x, *sde.marginal(t)))
    return ScoreModel.from_score(net, sde, (2,)), net


def karras(model, steps: int) -> torch.Tensor:
    """The karras grid as ``sample`` makes it (from T = 1 on rectified flow too)."""
    return make_grid(sk.get_solver("dpm_2"), model, steps)


def x_T(model, n: int = 32, seed: int = 3) -> torch.Tensor:
    return model.sde.prior_sample((n, 2), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("sde_name", SDES)
@pytest.mark.parametrize("steps", [3, 4, 7, 12])
def test_parallel_directions_at_defaults_is_dpm_2(sde_name, steps):
    model, net = counted(mixture(), sk.get_sde(sde_name))
    ts = karras(model, steps)
    x = x_T(model)
    ref = sk.sample(model, "dpm_2", x_T=x, ts=ts, progress=False)
    solver_steps = steps - int(model.sde.alpha_T_is_zero)
    r = torch.full((solver_steps, 1), 0.5, dtype=torch.float64)
    calls = net.calls
    got = sk.sample(model, ParallelDirections(r), x_T=x, ts=ts, progress=False)
    assert net.calls - calls == ref.nfe == got.nfe
    torch.testing.assert_close(got.samples, ref.samples, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("sde_name", SDES)
@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("steps", [3, 5, 9])
def test_learned_multistep_at_defaults_is_ipndm(sde_name, order, steps):
    model, _ = counted(mixture(), sk.get_sde(sde_name))
    ts = karras(model, steps)
    x = x_T(model)
    ref = sk.sample(model, "ipndm", x_T=x, ts=ts, max_order=order, progress=False)
    got = sk.sample(model, LearnedMultistep(adams_bashforth(steps, order)), x_T=x, ts=ts, progress=False)
    assert got.nfe == ref.nfe
    torch.testing.assert_close(got.samples, ref.samples, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("sde_name", SDES)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_plan_spends_the_budget_at_the_network(sde_name, k):
    model, net = counted(mixture(), sk.get_sde(sde_name))
    alpha_zero = model.sde.alpha_T_is_zero
    for nfe in range(3 + k, 13):
        steps, afs, single = plan(nfe, k, alpha_zero, afs_ok=not alpha_zero)
        solver = ParallelDirections(torch.full((steps, k), 0.5, dtype=torch.float64), afs=afs, single_last=single)
        ts = karras(model, steps + alpha_zero)
        calls = net.calls
        res = sk.sample(model, solver, x_T=x_T(model, 4), ts=ts, progress=False)
        assert net.calls - calls == res.nfe
        assert res.nfe == int(alpha_zero) + steps * (1 + k) - afs - k * single
        assert nfe - (k - 1) <= res.nfe <= nfe  # K >= 2: some budgets cannot be met exactly


def test_grid_parametrisation_round_trips_and_stays_ordered():
    ts = sk.get_schedule("karras")(sk.get_sde("vp"), 6)
    torch.testing.assert_close(grid_of(logits_of(ts), 1.0, 1e-3), ts, rtol=1e-12, atol=1e-15)
    z = torch.randn(6, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 5
    g = grid_of(z, 1.0, 1e-3)
    assert bool((g[1:] < g[:-1]).all()) and float(g[0]) == 1.0 and float(g[-1]) == 1e-3


@pytest.mark.parametrize("base", ["unipc", "learned"])
def test_fit_gradient_matches_finite_differences(base):
    """The fit's gradient through the solver and the grid (autograd in t) against central differences."""
    model, _ = counted(mixture(), sk.get_sde("vp"))
    x = x_T(model, 16)
    teacher = sk.decode(model, x, rtol=1e-9, atol=1e-9)
    solver = sk.get_solver("unipc") if base == "unipc" else LearnedMultistep(adams_bashforth(5, 3))
    z = logits_of(sk.get_schedule("logsnr")(model.sde, 5)).requires_grad_(True)
    with torch.enable_grad():
        fit_loss(model, solver, grid_of(z, 1.0, 1e-3), x, teacher).backward()
    eps = 1e-6
    for j in range(5):
        dz = torch.zeros_like(z)
        dz[j] = eps
        with torch.no_grad():
            hi = fit_loss(model, solver, grid_of(z + dz, 1.0, 1e-3), x, teacher)
            lo = fit_loss(model, solver, grid_of(z - dz, 1.0, 1e-3), x, teacher)
        assert float(z.grad[j]) == pytest.approx(float(hi - lo) / (2 * eps), rel=1e-4, abs=1e-9)


def _held_out_distance(model, sampler) -> float:
    x = x_T(model, 256, seed=99)
    ref = sk.decode(model, x, rtol=1e-9, atol=1e-9)
    return float(((sk.sample(model, sampler, x_T=x, progress=False).samples - ref) ** 2).mean())


@pytest.mark.parametrize("method, options", [("ld3", {"coefficients": True}), ("amed", {}), ("ld3", {}), ("epd", {})])
def test_fit_lowers_the_fit_loss_and_the_held_out_distance(method, options, tmp_path):
    model, _ = counted(mixture(), sk.get_sde("vp"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FitFallbackWarning)
        fitted = sk.fit_solver(model, 5, method=method, num_fit=64, iters=40, batch=64, lr=0.01, cache=False, **options)
    assert fitted.fit["loss"] < fitted.fit["baseline_loss"] and fitted.fit["fallback"] is None
    assert fitted.fit["nfe_spent"] > 0 and fitted.fit["seconds"] > 0
    baseline = _baseline_of(fitted)
    assert _held_out_distance(model, fitted) < _held_out_distance(model, baseline)
    res = sk.sample(model, fitted, x_T=x_T(model, 4), progress=False)
    assert res.nfe == 5


def _baseline_of(fitted: FittedSampler) -> FittedSampler:
    """The fitter's start (its defaults on its start grid), as the fit report records it."""
    return FittedSampler(
        **{**fitted.__dict__, "params": fitted.fit["baseline_params"], "ts": fitted.fit["baseline_ts"]}
    )


def test_file_round_trip_and_refusals(tmp_path):
    model, _ = counted(mixture(), sk.get_sde("vp"))
    fitted = sk.fit_solver(model, 4, method="ld3", coefficients=True, num_fit=32, iters=5, cache=False)
    path = fitted.save(tmp_path / "f.json")
    loaded = FittedSampler.load(path)
    assert loaded == fitted and path.stat().st_size < 20_000
    x = x_T(model, 8)
    assert torch.equal(sk.sample(model, loaded, x_T=x).samples, sk.sample(model, fitted, x_T=x).samples)
    other_sde, _ = counted(mixture(), sk.get_sde("edm"))
    with pytest.raises(FittedSamplerError, match="SDE VPSDE.*EDMSDE"):
        sk.sample(other_sde, loaded, num_samples=2)
    other_model, _ = counted(mixture(shift=0.1), sk.get_sde("vp"))
    with pytest.raises(FittedSamplerError, match="another model"):
        sk.sample(other_model, loaded, num_samples=2)
    with pytest.raises(FittedSamplerError, match="nfe=4, not nfe=6"):
        sk.sample(model, loaded, nfe=6, num_samples=2)
    with pytest.raises(FittedSamplerError, match="ts given"):
        sk.sample(model, loaded, ts=loaded.grid(), num_samples=2)
    with pytest.raises(FittedSamplerError, match="eta"):
        sk.sample(model, loaded, num_samples=2, eta=0.5)
    (tmp_path / "bad.json").write_text('{"method": "ld3"}')
    with pytest.raises(sk.errors.InputFileError, match="not a fitted sampler file"):
        FittedSampler.load(tmp_path / "bad.json")
    with pytest.raises(sk.errors.InputFileError, match="does not exist"):
        FittedSampler.load(tmp_path / "missing.json")


def test_bad_requests_are_refused_before_work():
    model, net = counted(mixture(), sk.get_sde("vp"))
    with pytest.raises(sk.errors.UnknownComponentError, match="amed"):
        sk.fit_solver(model, 5, method="amde")
    with pytest.raises(sk.errors.InvalidArgumentError, match="nfe"):
        sk.fit_solver(model, 1)
    with pytest.raises(sk.errors.InvalidArgumentError, match="num_fit"):
        sk.fit_solver(model, 5, num_fit=1)
    with pytest.raises(sk.errors.InvalidArgumentError, match="fitter 'amed'"):
        sk.fit_solver(model, 5, method="amed", bogus=1)
    assert net.calls == 0


def test_cache_hit_spends_no_calls_and_is_keyed_by_model_nfe_and_options(tmp_path):
    model, net = counted(mixture(), sk.get_sde("vp"))
    kw = dict(method="ld3", coefficients=True, num_fit=16, iters=3, cache_dir=tmp_path)
    first = sk.fit_solver(model, 4, **kw)
    calls = net.calls
    again = sk.fit_solver(model, 4, **kw)
    assert net.calls == calls and again == first
    assert len(list((tmp_path / "fitted").glob("*.json"))) == 1
    sk.fit_solver(model, 5, **kw)
    sk.fit_solver(model, 4, **{**kw, "iters": 4})
    other, _ = counted(mixture(shift=0.1), sk.get_sde("vp"))
    sk.fit_solver(other, 4, **kw)
    assert len(list((tmp_path / "fitted").glob("*.json"))) == 4


class _BadFitter(Fitter):
    """A fitter whose result is broken on purpose: a non-monotone grid, NaN weights, or worse weights."""

    name = "bad"

    def __init__(self, how: str = "grid") -> None:
        self.how = how

    def fit(self, model, nfe, x_T, teacher, cap):
        ts = karras(model, nfe + 1)
        b0 = adams_bashforth(nfe + 1, 3)
        b, grid = b0.clone(), ts.clone()
        if self.how == "grid":
            grid[2], grid[3] = ts[3], ts[2]
        elif self.how == "nan":
            b[1, 0] = float("nan")
        else:
            b = b * 3.0
        return FitResult(
            "learned_multistep",
            {"b": b.tolist(), "afs": True},
            grid.tolist(),
            "ipndm on karras",
            {"b": b0.tolist(), "afs": True},
            ts.tolist(),
        )

    @classmethod
    def build(cls, fitted):
        return LearnedMultistep(fitted.params["b"], fitted.params["afs"])


@pytest.mark.parametrize(
    "how, reason", [("grid", "not strictly decreasing"), ("nan", "diverged"), ("worse", "not below its baseline")]
)
def test_a_broken_fit_falls_back_to_its_baseline_with_the_reason(how, reason, monkeypatch):
    monkeypatch.setattr(fitted_module, "fitter_class", lambda method: _BadFitter)
    model, _ = counted(mixture(), sk.get_sde("vp"))
    with pytest.warns(FitFallbackWarning, match=reason):
        got = sk.fit_solver(model, 4, method="bad", how=how, num_fit=16, cache=False)
    assert got.fit["fallback"] and reason in got.fit["fallback"]
    assert got.params["b"] == adams_bashforth(5, 3).tolist() and got.ts == karras(model, 5).tolist()


def test_cap_stops_the_fit_and_is_reported():
    model, net = counted(mixture(), sk.get_sde("vp"))
    fitted = sk.fit_solver(
        model, 4, method="ld3", coefficients=True, num_fit=16, iters=10_000, max_nfe=1500, cache=False
    )
    assert fitted.fit["capped"] and fitted.fit["nfe_spent"] == net.calls
    assert fitted.fit["nfe_spent"] <= 1500 + 2 * 4  # the cap, and the two checks of the result (fit and baseline)


def test_cli_fit_then_sample_and_refusals(tmp_path):
    from samplekit.cli.app import cli

    runner = CliRunner()
    out = tmp_path / "f.json"
    res = runner.invoke(
        cli,
        [
            "fit-solver",
            "--target",
            "ring2d",
            "--sde",
            "vp",
            "--nfe",
            "4",
            "--method",
            "ld3",
            "--option",
            "coefficients=true",
            "--option",
            "iters=3",
            "--num-fit",
            "16",
            "--no-cache",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "network calls" in res.output and out.exists()
    res = runner.invoke(
        cli,
        [
            "sample",
            "--target",
            "ring2d",
            "--sde",
            "vp",
            "--fitted",
            str(out),
            "-n",
            "8",
            "--out",
            str(tmp_path / "s.npz"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "4 NFE" in res.output
    for extra, needle in ((["--sde", "edm"], "SDE"), (["--nfe", "6"], "nfe=4"), (["--solver", "ddim"], "--solver")):
        args = [
            "sample",
            "--target",
            "ring2d",
            "--sde",
            "vp",
            "--fitted",
            str(out),
            "-n",
            "2",
            "--force",
            "--out",
            str(tmp_path / "s.npz"),
        ]
        res = runner.invoke(cli, args + extra)
        assert res.exit_code != 0 and needle in res.output and "Traceback" not in res.output
    res = runner.invoke(cli, ["fit-solver", "--nfe", "4", "--option", "bogus=1", "--out", str(tmp_path / "g.json")])
    assert res.exit_code != 0 and "bogus" in res.output
