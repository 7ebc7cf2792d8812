"""The reference ODE solution and the statistics that rank solvers, against exact answers: the
probability-flow map of a Gaussian in closed form, pooled moments, the entropy of a Gaussian, mode
weights of separated mixtures; then reference-free runs on the shipped ring2d MLP, the recommendation,
and results loaded as a DataFrame / CSV."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import samplekit as sk
from samplekit.bench import load_results, metrics, stats
from samplekit.bench.command import bench_command
from samplekit.bench.flow import flow_errors, flow_reference, prior_draw
from samplekit.plugins import get_registry
from samplekit.targets import GaussianMixture

REPO = Path(__file__).resolve().parents[1]
RING2D_MLP = REPO / "plugins" / "samplekit_models" / "weights" / "ring2d_mlp"
f64 = dict(dtype=torch.float64)


def gaussian_flow(x_T, m: torch.Tensor, s: float, sde, t: float):
    """Closed form: for data N(m, s^2 I) the probability-flow ODE maps x_T to
    alpha_t m + (std_t / std_T) (x_T - alpha_T m), std_t^2 = alpha_t^2 s^2 + sigma_t^2."""
    a_t, g_t = (float(v) for v in sde.marginal(torch.tensor(t, **f64)))
    a_T, g_T = (float(v) for v in sde.marginal(torch.tensor(sde.T, **f64)))
    std_t, std_T = math.hypot(a_t * s, g_t), math.hypot(a_T * s, g_T)
    return a_t * m + std_t / std_T * (x_T - a_T * m)


def test_the_reference_ode_solution_is_the_exact_flow_of_a_gaussian():
    sde = sk.VPSDE()
    m, s = torch.tensor([1.5, -0.5], **f64), 0.7
    model = GaussianMixture([1.0], m[None], torch.full((1, 2), s * s, **f64)).score_model(sde)
    x_T = prior_draw(model, 300, 3, torch.float64)
    ref = flow_reference(get_registry(), model, x_T, 1e-8)
    exact = gaussian_flow(x_T, m, s, sde, sde.t_min)
    assert ref["dtype"] == "float64" and ref["nfe_spent"] > 20
    assert float(flow_errors(ref["samples"], exact).max()) < 1e-6
    # a coarse solver's distance to it is its distance to the exact flow, sample by sample
    res = sk.sample(model, solver="ode_euler", nfe=8, x_T=x_T, progress=False)
    e = flow_errors(res.samples, ref["samples"])
    exact_e = (res.samples - exact).norm(dim=1) / math.sqrt(2)
    assert torch.allclose(e, exact_e, atol=1e-6) and float(e.mean()) > 1e-3


def test_prior_draw_is_the_x_T_that_sample_draws_for_the_seed():
    model = sk.targets.ring2d().score_model(sk.VPSDE())
    a = sk.sample(model, solver="ode_euler", nfe=5, num_samples=50, seed=7, progress=False)
    b = sk.sample(model, solver="ode_euler", nfe=5, x_T=prior_draw(model, 50, 7, torch.float32), progress=False)
    assert torch.equal(a.samples, b.samples)


def test_pooled_moments_over_seeds_are_those_of_all_samples():
    g = torch.Generator().manual_seed(0)
    parts = [torch.randn(n, generator=g, **f64) * s + mu for n, s, mu in ((50, 1.0, 0.0), (70, 2.0, 1.0), (9, 0.5, 3))]
    mean, sd, n = stats.pool([stats.per_sample(p) for p in parts])
    allv = torch.cat(parts)
    assert n == 129 and mean == pytest.approx(float(allv.mean()), rel=1e-12)
    assert sd == pytest.approx(float(allv.std()), rel=1e-12)


def test_abs_gap_interval_folds_at_zero():
    assert stats.abs_gap_interval([[1.0, 0.0, 10]], 0.5) == stats.Estimate(0.5, 0.5, 0.5)
    e = stats.abs_gap_interval([[0.0, 1.0, 100]], 0.1)  # interval of the shift straddles 0
    assert e.lo == 0.0 and e.hi == pytest.approx(0.1 + 1.959964 * 0.1) and e.value == pytest.approx(0.1)
    e = stats.abs_gap_interval([[0.0, 1.0, 100]], 1.0)  # wholly negative: mirrored
    assert (e.lo, e.hi) == (pytest.approx(1 - 0.196, abs=1e-3), pytest.approx(1 + 0.196, abs=1e-3))


def test_paired_differences_separate_what_overlapping_intervals_cannot():
    g = torch.Generator().manual_seed(1)
    hard = torch.rand(2000, generator=g, **f64) ** 4 * 10  # heavy-tailed per-sample errors
    a, b = hard.numpy(), (hard * 1.02).numpy()  # b is 2% worse on every sample
    ea, eb = (stats.mean_interval([stats.per_sample(torch.as_tensor(v))]) for v in (a, b))
    assert eb.lo < ea.hi  # unpaired: tied
    assert stats.tie_groups([("a", ea), ("b", eb)]) == [["a", "b"]]
    assert stats.paired_tie_groups([("a", ea, a), ("b", eb, b)]) == [["a"], ["b"]]
    noise = torch.randn(2000, generator=g, **f64).numpy() * 0.5  # no systematic difference: tied
    ec = stats.mean_interval([stats.per_sample(torch.as_tensor(a + noise))])
    assert stats.paired_tie_groups([("a", ea, a), ("c", ec, a + noise)])[0] == sorted(
        ["a", "c"], key=lambda k: {"a": ea.value, "c": ec.value}[k]
    )


def test_per_sample_values_survive_their_compact_encoding():
    g = torch.Generator().manual_seed(2)
    v = torch.rand(500, generator=g, **f64) ** 3
    back = stats.decode_per_sample(stats.encode_per_sample(v), float(v.mean()))
    assert np.allclose(back, v.numpy(), rtol=1e-3, atol=1e-6) and back.mean() == pytest.approx(float(v.mean()))


def test_sw2_bootstrap_se_matches_the_spread_over_independent_sets():
    mix = sk.targets.gmm16_full()
    y = mix.sample(1000, generator=torch.Generator().manual_seed(100))
    dirs = metrics.fixed_directions(16, 256, 0)
    se = stats.sw2_bootstrap_se(mix.sample(1000, generator=torch.Generator().manual_seed(0)), y, dirs, 25)
    spread = torch.tensor(
        [
            metrics.sliced_wasserstein(
                mix.sample(1000, generator=torch.Generator().manual_seed(s)),
                mix.sample(1000, generator=torch.Generator().manual_seed(s + 50)),
            )
            for s in range(1, 13)
        ]
    ).std()
    assert 0.5 < se / float(spread) < 2.0


def test_log_density_gap_against_the_entropy_of_a_gaussian():
    s, d = 0.8, 3
    mix = GaussianMixture([1.0], torch.zeros(1, d, **f64), torch.full((1, d), s * s, **f64))
    entropy = 0.5 * d * math.log(2 * math.pi * math.e * s * s)  # E_p log p = -entropy
    x = mix.sample(4000, generator=torch.Generator().manual_seed(0))
    gap = metrics.log_density_gap(x, x, mix.log_prob, expected=-entropy)
    assert gap < 4 * math.sqrt(d / 2) / math.sqrt(4000)  # sd of log p is sqrt(d/2)
    # widened by 1.1: E log p drops by d (1.21 - 1) / 2; within 4 standard errors (sd of log p(1.1 X): 1.21 sqrt(d/2))
    assert metrics.log_density_gap(1.1 * x, x, mix.log_prob, expected=-entropy) == pytest.approx(
        0.5 * d * (1.21 - 1), abs=4 * 1.21 * math.sqrt(d / 2) / math.sqrt(4000)
    )


def test_mode_weight_tv_of_separated_modes():
    mix = GaussianMixture([0.2, 0.3, 0.5], torch.tensor([[-10.0, 0], [0, 0], [10, 0]], **f64), torch.ones(3, 2, **f64))
    x = mix.sample(5000, generator=torch.Generator().manual_seed(0))
    assert metrics.mode_weight_tv(x, x, mix) < 0.02
    only_last = mix.component(2).sample(1000, generator=torch.Generator().manual_seed(1))
    assert metrics.mode_weight_tv(only_last, x, mix) == pytest.approx(0.5, abs=1e-6)  # 1 - w_3


SUITE = """
name = "rf"
targets = ["ring2d"]
nfe = [6, 12]
seeds = [0]
num_samples = 300
metrics = ["sliced_w2", "logp_gap", "mode_tv"]
tolerances = [0.05]
max_nfe = 200
reference_sde_nfe = 100
solvers = ["ode_euler", "dpmpp_2m", "ddim", "euler_maruyama", "ode_bosh3"]
"""


def invoke(*args):
    return CliRunner().invoke(bench_command, ["--no-progress", *map(str, args)])


def test_a_model_without_reference_samples_is_ranked_against_its_own_dynamics(tmp_path):
    suite = tmp_path / "rf.toml"
    suite.write_text(SUITE)
    out = tmp_path / "out"
    result = invoke("--suite", suite, "--model", RING2D_MLP, "--loader", "samplekit", "--out", out, "--csv")
    assert result.exit_code == 0, result.output
    assert "This is the solver's error, not the model's" in result.stdout
    table = (out / "table.md").read_text()
    assert "## ring2d_mlp (vp)" in table and "## ring2d (vp)" not in table
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    refs = [r for r in records if r["kind"] == "flow_ref"]
    assert len(refs) == 1 and refs[0]["nfe_spent"] > 20
    assert f"{refs[0]['nfe_spent']} NFE per solve" in table
    det = {r["label"]: r for r in records if r["kind"] == "cell" and r["stochastic"] is False}
    assert set(det) == {"ode_euler", "dpmpp_2m", "ddim", "ode_bosh3"}
    assert all(r["metrics"]["flow_error"] > 0 and r["metrics"]["logp_gap"] is None for r in det.values())
    # the recommendation at NFE 12 is the deterministic solver nearest the reference solution
    at12 = {lab: r["metrics"]["flow_error"] for lab, r in det.items() if r["nfe"] == 12 and not r["adaptive"]}
    line = next(ln for ln in table.splitlines() if ln.startswith("| ring2d_mlp (vp) | 12 |"))
    assert f"**{min(at12, key=at12.get)}**" in line
    assert "Recommended" in table and (out / "ring2d_mlp_samples.png").is_file()
    assert (out / "quality_vs_nfe_networks.png").is_file() and (out / "quality_vs_time_networks.png").is_file()
    frame = load_results(out)
    assert len(frame) == len(records) and {"flow_error", "se_sliced_w2", "flow_error_sd"} <= set(frame.columns)
    csv = (out / "results.csv").read_text().splitlines()
    assert len(csv) == len(records) + 1 and "flow_error" in csv[0]


def test_on_an_exact_target_the_extra_metrics_have_intervals(tmp_path):
    suite = tmp_path / "rf.toml"
    suite.write_text(SUITE.replace('"ddim", "euler_maruyama", "ode_bosh3"', '"ddpm"'))
    out = tmp_path / "out"
    result = invoke("--suite", suite, "--out", out, "--no-plots")
    assert result.exit_code == 0, result.output
    frame = load_results(out)
    cells = frame[frame.kind == "cell"]
    assert cells.se_mode_tv.notna().all() and cells.logp_mean.notna().all() and cells.se_sliced_w2.notna().all()
    assert cells[cells.stochastic == False].flow_error.notna().all()  # noqa: E712
    assert cells[cells.stochastic == True].flow_error.isna().all()  # noqa: E712
    table = (out / "table.md").read_text()
    assert "Resolution: NFE 6: 2 deterministic solvers" in table
    assert "| logp gap | mode TV | dist. to ODE ref |" in table


def test_every_solver_in_a_figure_has_a_colour_of_its_own_and_its_family_a_line_style():
    pytest.importorskip("matplotlib")
    from samplekit.bench.plots import FAMILY_STYLE, styles

    labels = [f"s{i}" for i in range(45)]
    family = {lab: ("deterministic ODE", "stochastic", "adaptive ODE")[i % 3] for i, lab in enumerate(labels)}
    look = styles(labels, family)
    assert len({tuple(c) for c, _, _ in look.values()}) == 45  # no colour used twice
    assert all(look[lab][2] == FAMILY_STYLE[family[lab]] for lab in labels)
