"""`samplekit bench` on the command line: a small suite end to end, options, bad input, the default suite."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import samplekit.plugins
from samplekit.bench import suite as suite_module
from samplekit.bench.grid import build_cells, validate
from samplekit.cli import cli
from samplekit.plugins import get_registry
from samplekit.targets import ring2d

REPO = Path(__file__).resolve().parents[1]

SMALL = """
name = "small"
targets = ["ring2d"]
nfe = [4, 16]
seeds = [0]
num_samples = 300
metrics = ["sliced_w2", "energy", "logp_gap"]
solvers = ["euler_maruyama", { name = "euler_maruyama", label = "em_quad", options = { schedule = "quadratic" } }]
"""


@pytest.fixture
def small_suite(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


def invoke(*args):
    return CliRunner().invoke(cli, ["bench", "--no-progress", *map(str, args)])


def test_bench_runs_a_suite_prints_the_table_and_writes_the_figures(tmp_path, small_suite):
    out = tmp_path / "out"
    result = invoke("--suite", small_suite, "--out", out)
    assert result.exit_code == 0, result.output
    # the terminal: the Recommended table first, then where the full table is; the table itself is in table.md
    assert result.stdout.startswith("## Recommended") and "| ring2d (vp) | 4 | **" in result.stdout
    assert f"full table: {out / 'table.md'}" in result.stdout and "## ring2d (vp)" not in result.stdout
    table = (out / "table.md").read_text()
    assert "| em_quad |" in table and "*noise floor*" in table
    assert table.index("## Recommended") < table.index("## ring2d (vp)")
    for name in (
        "results.jsonl",
        "table.md",
        "quality_vs_nfe_exact.png",
        "quality_vs_time_exact.png",
        "recommended.png",
        "ring2d_samples.png",
    ):
        assert (out / name).stat().st_size > 0, name
    assert not (out / "quality_vs_nfe.png").exists()
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(records) == 1 + 2 * 2 and all(r["status"] == "ok" for r in records)
    assert {r["options"].get("schedule") for r in records if r["kind"] == "cell"} == {None, "quadratic"}
    again = invoke("--suite", small_suite, "--out", out, "--no-plots")
    assert "0 cells ok, 0 failed, 0 skipped, 5 already done" in again.output


def test_options_override_the_suite(tmp_path, small_suite):
    out = tmp_path / "out"
    result = invoke(
        "--suite",
        small_suite,
        "--out",
        out,
        "--solvers",
        "em_quad",
        "--nfe",
        "3",
        "--seeds",
        "1,2",
        "--metrics",
        "mean_error",
        "-n",
        "100",
        "--no-plots",
    )
    assert result.exit_code == 0, result.output
    cells = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    runs = [c for c in cells if c["kind"] == "cell"]
    assert {(c["label"], c["nfe"], c["seed"], c["num_samples"]) for c in runs} == {
        ("em_quad", 3, 1, 100),
        ("em_quad", 3, 2, 100),
    }
    assert all(set(c["metrics"]) == {"mean_error"} for c in cells)
    assert "mean err" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--solvers", "eulr_maruyama"], "unknown solver 'eulr_maruyama'"),
        (["--targets", "ring3d"], "unknown target 'ring3d'"),
        (["--metrics", "mmdd"], "unknown metric 'mmdd'"),
        (["--nfe", "5,x"], "comma-separated list of ints"),
        (["--nfe", "0"], "positive integers"),
        (["--model", "m.pt"], "'m.pt' is neither a path nor a shipped model's name"),
        (["--data", "r.npz"], "--data applies to --model"),
        (["--reference", "r.npz"], "--data applies to --model"),
        (["--loader", "torch"], "--loader applies to --model"),
        (["--class", "3"], "--class applies to --model"),
        (["--model", "m.pt", "--loader", "nope", "--data", "r.npz"], "unknown model_loader 'nope'"),
        (["--model", "ring2d_mlp", "--shape", "2"], "--shape does not apply to the shipped model"),
        (["--model", "ring2d_mlp", "--guidance", "2"], "--guidance needs --class"),
    ],
)
def test_bad_input_is_a_clear_error_before_any_work(tmp_path, small_suite, args, message):
    out = tmp_path / "out"
    result = invoke("--suite", small_suite, "--out", out, *args)
    assert result.exit_code == 2
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and message in result.stderr.split("error: ", 1)[1] and "Traceback" not in result.output
    assert not out.exists()


def test_a_missing_or_broken_suite_file_is_a_clear_error(tmp_path):
    result = invoke("--suite", tmp_path / "nope.toml")
    assert result.exit_code != 0 and "does not exist" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text("targets = [")
    result = invoke("--suite", bad)
    assert result.exit_code != 0 and "not valid TOML" in result.output


def test_bench_with_a_users_model_through_a_loader_plugin(tmp_path, fresh_registry, monkeypatch, small_suite):
    import samplekit as sk
    from test_bench_runner import loader_plugin

    registry = fresh_registry(loader_plugin(sk.VPSDE()), builtins=("samplekit_builtin",))
    monkeypatch.setattr(samplekit.plugins, "get_registry", lambda: registry)
    mix = ring2d()
    np.savez(
        tmp_path / "ring_model.npz", weights=mix.weights.numpy(), means=mix.means.numpy(), covs=mix.covariances.numpy()
    )
    np.save(tmp_path / "ref.npy", mix.sample(800, torch.Generator().manual_seed(1)).numpy())
    out = tmp_path / "out"
    result = invoke(
        "--suite",
        small_suite,
        "--out",
        out,
        "--targets",
        "gmm16_full",
        "--nfe",
        "4",
        "--no-plots",
        "--model",
        tmp_path / "ring_model.npz",
        "--loader",
        "toy_npz",
        "--data",
        tmp_path / "ref.npy",
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {r["target"] for r in records} == {"gmm16_full", "ring_model"}
    assert "## ring_model (vp)" in (out / "table.md").read_text() and "| ring_model (ve) |" not in result.stdout


def test_the_default_suite_ships_inside_the_package_and_matches_the_repo_copy():
    repo_copy = REPO / "benchmarks" / "suites" / "default.toml"
    assert suite_module.PACKAGED_DEFAULT.read_text() == repo_copy.read_text()
    assert suite_module.default_suite_path() == repo_copy
    suite = suite_module.load_suite(suite_module.PACKAGED_DEFAULT)
    assert suite.name == "default" and {"ring2d", "gmm16_full", "gmm64_diag", "ring2d_mlp", "digits_unet"} <= set(
        suite.targets
    )
    registry = get_registry()
    cells = build_cells(suite, registry, validate(suite, registry))  # every name in it is registered
    assert len(cells) > len(suite.targets) * len(suite.seeds)


def test_ctrl_c_keeps_finished_cells_and_a_rerun_resumes(tmp_path, fresh_registry, monkeypatch):
    import test_bench_runner as toy

    registry = fresh_registry(toy.toy_plugin(), builtins=("samplekit_builtin",))
    monkeypatch.setattr(samplekit.plugins, "get_registry", lambda: registry)
    suite = tmp_path / "s.toml"
    suite.write_text(SMALL.replace("solvers = [", 'solvers = ["counted_em", "crasher", '))
    out = tmp_path / "out"
    toy.CALLS["counted_em"], toy.CRASH["on"] = 0, True
    result = invoke("--suite", suite, "--out", out, "--no-plots")
    assert result.exit_code == 130 and f"rerun with --out {out} to resume" in result.output
    assert len((out / "results.jsonl").read_text().splitlines()) == 1 + 2  # the floor and counted_em's cells
    toy.CRASH["on"] = False
    result = invoke("--suite", suite, "--out", out, "--no-plots")
    assert result.exit_code == 0, result.output
    assert "6 cells ok, 0 failed, 0 skipped, 3 already done" in result.output and toy.CALLS["counted_em"] == 2
