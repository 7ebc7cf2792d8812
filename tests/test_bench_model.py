"""`samplekit bench` as a newcomer meets it: results never clobbered, `--model` with every flag `sample` takes
(loaders torch/denoiser, shipped names, --cond, --class), metrics only where they belong, a failed cell
exits non-zero, one error style."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import samplekit.plugins
from samplekit.bench.command import fresh_run_dir
from samplekit.cli import cli

SUITE = """
name = "{name}"
targets = ["ring2d"]
nfe = [4]
seeds = [0]
num_samples = 120
metrics = ["sliced_w2", "mean_error", "digits_fd"]
solvers = ["ode_euler", "euler_maruyama"]
flow_tolerance = 1e-4
reference_sde_nfe = 40
bootstrap = 5
"""


@pytest.fixture
def suite(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(SUITE.format(name="tiny"))
    return path


def bench(*args):
    return CliRunner().invoke(cli, ["bench", "--no-progress", "--no-plots", *map(str, args)])


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


class EpsNet(torch.nn.Module):
    """eps(x, t) = 0.3 x (any shape)."""

    def forward(self, x, t):
        return 0.3 * x


class Denoiser(torch.nn.Module):
    """D(x, sigma) = x / (1 + sigma^2): the exact denoiser of N(0, I) 2-D data under the EDM SDE."""

    def forward(self, x, sigma):
        s = sigma.reshape(-1, 1)
        return x / (1 + s * s)


class OffsetNet(torch.nn.Module):
    """eps(x, t) = 0.1 x + offset (a network input bound with --cond)."""

    def forward(self, x, t, offset: torch.Tensor):
        return 0.1 * x + offset.to(x.dtype).reshape(-1, 1)


class ClassNet(torch.nn.Module):
    """eps(x, t, class_labels) = 0.2 x + table[class_labels]: a class-conditional network (label 2 = none)."""

    def __init__(self) -> None:
        super().__init__()
        self.table = torch.nn.Parameter(torch.tensor([[0.5, 0.0], [-0.5, 0.0], [0.0, 0.0]]))

    def forward(self, x, t, class_labels: torch.Tensor):
        return 0.2 * x + self.table[class_labels].to(x.dtype).expand(x.shape[0], 2)


def script(net: torch.nn.Module, path: Path) -> Path:
    torch.jit.script(net).save(str(path))
    return path


# --- 1. results are never clobbered ---------------------------------------------------------------


def test_a_fresh_run_directory_is_named_by_time_and_suite_and_never_reused(tmp_path):
    now = time.mktime((2026, 12, 4, 15, 40, 12, 0, 0, -1))
    first = fresh_run_dir("default", tmp_path, now)
    assert first == tmp_path / "20261204-154012-default"
    first.mkdir()
    second = fresh_run_dir("default", tmp_path, now)
    assert second == tmp_path / "20261204-154012-default-2"


def test_bench_without_out_writes_a_fresh_directory_and_leaves_make_bench_results_alone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    suite = tmp_path / "default.toml"
    suite.write_text(SUITE.format(name="default").replace('"ode_euler", ', ""))
    make_bench = tmp_path / "out" / "default"  # what `make bench` writes (--out out/default)
    make_bench.mkdir(parents=True)
    (make_bench / "table.md").write_text("make bench's table")
    runs = []
    for _ in range(2):
        result = bench("--suite", suite)
        assert result.exit_code == 0, result.output
        made = sorted(p for p in (tmp_path / "out").iterdir() if p != make_bench and p not in runs)
        assert len(made) == 1 and re.fullmatch(r"\d{8}-\d{6}-default(-\d+)?", made[0].name)  # -2: same second
        assert f"-> {Path('out') / made[0].name}" in result.stderr  # says where, before the run
        assert f"full table: {Path('out') / made[0].name / 'table.md'}" in result.stdout  # and after it
        runs += made
    assert (make_bench / "table.md").read_text() == "make bench's table" and len(list(make_bench.iterdir())) == 1
    assert all((run / "results.jsonl").is_file() for run in runs)


# --- 2. a failed cell makes the run exit non-zero, with one line saying what failed ------------------


def test_a_failed_cell_makes_the_run_exit_1_with_a_one_line_summary(tmp_path, fresh_registry, monkeypatch, suite):
    import test_bench_runner as toy

    registry = fresh_registry(toy.toy_plugin(), builtins=("samplekit_builtin",))
    monkeypatch.setattr(samplekit.plugins, "get_registry", lambda: registry)
    out = tmp_path / "out"
    result = bench("--suite", suite, "--out", out, "--solvers", "euler_maruyama,boom", "--metrics", "sliced_w2")
    assert result.exit_code == 1
    last = result.stderr.splitlines()[-1]
    # the core names the plugin solver that raised and its step (samplekit.sampling), the bench the cell
    assert re.fullmatch(
        r"error: 1 cell\(s\) failed: boom on ring2d \(vp\) NFE 4 seed 0: PluginSolverError: step 0 of 4 .*"
        r"plugin 'toy_bench_plugin'\) raised RuntimeError: kaboom \(at [\w.]+:\d+\) "
        r"\(see 'Skipped and failed cells' in table.md\)",
        last,
    ), last
    recs = records(out)
    ok = sum(r["status"] == "ok" for r in recs)
    assert f"{ok} cells ok, 1 failed, 0 skipped" in result.stdout  # the results are still reported and written
    assert "raised RuntimeError: kaboom" in (out / "table.md").read_text()
    again = bench("--suite", suite, "--out", out, "--solvers", "euler_maruyama,boom", "--metrics", "sliced_w2")
    assert again.exit_code == 1 and f"0 cells ok, 0 failed, 0 skipped, {len(recs)} already done" in again.stdout


# --- 2. --model takes every flag `sample` takes ------------------------------------------------------


def test_bench_model_with_the_torch_loader_and_its_flags(tmp_path, suite):
    net = script(EpsNet(), tmp_path / "net.ts")
    data = tmp_path / "data.npy"
    np.save(data, np.random.default_rng(0).standard_normal((400, 2)))
    out = tmp_path / "out"
    flags = ["--model", net, "--loader", "torch", "--parametrization", "eps", "--sde", "vp", "--shape", "2"]
    refused = bench("--suite", suite, "--out", out, *flags, "--data", data)
    assert refused.exit_code == 2 and "--trust-code" in refused.stderr and not out.exists()
    result = bench("--suite", suite, "--out", out, *flags, "--trust-code", "--data", data)
    assert result.exit_code == 0, result.output
    recs = records(out)
    assert {r["target"] for r in recs} == {"net"} and all(r["status"] == "ok" for r in recs)
    assert {r["sde"] for r in recs if r["kind"] == "cell"} == {"vp"}
    cells = [r for r in recs if r["kind"] == "cell"]
    assert all(r["metrics"]["sliced_w2"] > 0 and r["metrics"]["digits_fd"] is None for r in cells)


def test_bench_model_with_the_denoiser_loader(tmp_path, suite):
    net = script(Denoiser(), tmp_path / "den.ts")
    out = tmp_path / "out"
    result = bench(
        "--suite", suite, "--out", out, "--model", net, "--loader", "denoiser", "--shape", "2", "--trust-code"
    )
    assert result.exit_code == 0, result.output
    recs = records(out)
    assert {r["sde"] for r in recs if r["kind"] == "cell"} == {"edm"} and all(r["status"] == "ok" for r in recs)
    assert "measured against its own dynamics" in result.stdout  # no --data: the solver's error, said so
    param = bench("--suite", suite, "--out", out, "--model", net, "--loader", "denoiser", "--parametrization", "eps")
    assert param.exit_code == 2 and "--parametrization does not apply to loader 'denoiser'" in param.stderr


def test_bench_model_by_a_shipped_name_runs_that_target_with_its_own_reference(tmp_path, suite):
    out = tmp_path / "out"
    result = bench("--suite", suite, "--out", out, "--model", "ring2d_mlp", "--solvers", "ode_euler")
    assert result.exit_code == 0, result.output
    recs = records(out)
    assert {r["target"] for r in recs} == {"ring2d_mlp"}
    assert "| ring2d_mlp (vp) | 4 | **ode_euler** |" in result.stdout
    assert "own dynamics" not in result.stdout  # its exact ring2d reference, not a reference-free run


def test_bench_model_binds_cond_inputs_and_guides_a_loaded_class_conditional_network(tmp_path, suite):
    offset = script(OffsetNet(), tmp_path / "offset.ts")
    np.savez(tmp_path / "cond.npz", offset=np.array([0.5], dtype=np.float32))
    base = ["--suite", suite, "--solvers", "ode_euler", "--metrics", "mean_error"]
    torch_flags = ["--loader", "torch", "--parametrization", "eps", "--shape", "2", "--trust-code"]
    unbound = bench(*base, "--out", tmp_path / "a", "--model", offset, *torch_flags)
    assert unbound.exit_code == 1 and "failed" in unbound.stderr.splitlines()[-1]  # offset missing: every cell fails
    bound = bench(*base, "--out", tmp_path / "b", "--model", offset, *torch_flags, "--cond", tmp_path / "cond.npz")
    assert bound.exit_code == 0, bound.output
    classes = script(ClassNet(), tmp_path / "classes.ts")
    guided = bench(
        *base,
        "--out",
        tmp_path / "c",
        "--model",
        classes,
        *torch_flags,
        "--class",
        "1",
        "--guidance",
        "2",
        "--null-class",
        "2",
    )
    assert guided.exit_code == 0, guided.output
    assert {r["target"] for r in records(tmp_path / "c")} == {"classes_class1"}


# --- 3. metrics that belong to a target appear only for it --------------------------------------------


def test_a_users_8x8_model_gets_no_digits_metric_with_or_without_data(tmp_path, suite):
    net = script(EpsNet(), tmp_path / "img.ts")
    np.save(tmp_path / "data.npy", np.random.default_rng(1).standard_normal((300, 1, 8, 8)))
    flags = ["--model", net, "--loader", "torch", "--parametrization", "eps", "--shape", "1,8,8", "--trust-code"]
    for extra, out in (([], tmp_path / "free"), (["--data", tmp_path / "data.npy"], tmp_path / "data")):
        result = bench("--suite", suite, "--out", out, "--solvers", "ode_euler", *flags, *extra)
        assert result.exit_code == 0, result.output
        cells = [r for r in records(out) if r["kind"] == "cell"]
        assert cells and all(r["metrics"]["digits_fd"] is None and r["metrics"]["sliced_w2"] > 0 for r in cells)
        table = (out / "table.md").read_text()
        assert "digits FD" not in table and "SW2" in table  # the headline stays SW2, no digits column


def test_the_digits_metrics_apply_to_the_digits_targets_only():
    from samplekit.bench.runner import metric_applies
    from samplekit.plugins import get_registry

    registry = get_registry()
    info = dict(registry.get("metric", "digits_fd").info)
    digits = registry.create("target", "digits_unet")

    class UserImages:
        shape = (1, 8, 8)

    assert metric_applies(info, digits, (1, 8, 8))
    assert not metric_applies(info, UserImages(), (1, 8, 8))
    assert not metric_applies(info, digits, (1, 4, 4))
    assert metric_applies(dict(registry.get("metric", "sliced_w2").info), UserImages(), (1, 8, 8))


# --- 5. one error style -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["sample", "--bogus"], "error: No such option '--bogus'"),
        (["bench", "--nfe", "x"], "error: Invalid value for --nfe: 'x' must be a comma-separated list of ints"),
        (["sample", "-n", "0"], "error: Invalid value for '-n' / '--num-samples'"),
        (["nope"], "error: No such command 'nope'"),
        (["sample", "--target", "ring3d"], "error: unknown target 'ring3d'"),
    ],
)
def test_every_cli_error_is_one_line_on_stderr_with_exit_status_2(args, message):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and result.stderr.startswith(message) and len(result.stderr.splitlines()) == 1
    assert "Usage:" not in result.stderr and "Traceback" not in result.stderr


# --- 1. benchmark scripts write their recorded results only with --record ------------------------------


def test_a_benchmark_script_writes_its_recorded_results_only_with_record(tmp_path, monkeypatch):
    import importlib.util
    import sys

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts its folders on sys.path: undo that
    before = set(sys.modules)
    script_path = Path(__file__).resolve().parents[1] / "benchmarks" / "peers" / "run.py"
    spec = importlib.util.spec_from_file_location("peers_run_under_test", script_path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        quick = module.parse(["--quick"])
        recorded = module.parse(["--quick", "--record"])
        explicit = module.parse(["--quick", "--out", str(tmp_path / "mine")])
    finally:
        for name in set(sys.modules) - before:  # its sibling modules (common, report, ...) under benchmarks/
            if str(script_path.parents[1]) in str(getattr(sys.modules[name], "__file__", "") or ""):
                del sys.modules[name]
    assert Path(quick.out) == Path("out") / "benchmarks" / "peers" and (tmp_path / quick.out).is_dir()
    assert Path(recorded.out) == script_path.parent
    assert Path(explicit.out) == tmp_path / "mine"


# --- 5. figures read at a glance ---------------------------------------------------------------------------


def test_figures_have_a_short_legend_without_duplicates_budget_ticks_and_star_the_recommended_solver(
    tmp_path, monkeypatch
):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    saved: dict[str, Figure] = {}
    real_savefig = Figure.savefig

    def keep(fig, path, *args, **kwargs):
        saved[Path(path).name] = fig
        fig.canvas.draw()  # tick labels exist once drawn
        return real_savefig(fig, path, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    suite = tmp_path / "figs.toml"
    suite.write_text(
        SUITE.format(name="figs")
        .replace('"ode_euler", "euler_maruyama"', '"ode_euler", "ddim", "dpmpp_2m", "ddpm"')
        .replace("nfe = [4]", "nfe = [4, 8]\nscatter_nfe = 8")
        .replace('targets = ["ring2d"]', 'targets = ["ring2d", "gmm16_full"]')
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["bench", "--no-progress", "--suite", str(suite), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert {"quality_vs_nfe_exact.png", "quality_vs_time_exact.png", "recommended.png", "ring2d_samples.png"} <= set(
        saved
    )
    figure = saved["quality_vs_nfe_exact.png"]
    names = [t.get_text() for t in figure.legends[0].get_texts()]
    assert len(names) == len(set(names)) <= 6 and not any("★" in n for n in names)
    recommended = {
        line.split("|")[3].strip(" *")
        for line in (out / "table.md").read_text().splitlines()
        if line.startswith(("| ring2d (vp) |", "| gmm16_full (vp) |"))
    }
    assert set(names) - {"other deterministic ODE solvers", "other stochastic solvers"} == recommended
    for ax in figure.axes:
        assert [t.get_text() for t in ax.get_xticklabels() if t.get_text()] == ["4", "8"]
        assert len([t for t in ax.get_yticklabels() if t.get_text()]) >= 2  # readable numbers on y
    at8 = next(
        line.split("|")[3].strip(" *")
        for line in (out / "table.md").read_text().splitlines()
        if line.startswith("| ring2d (vp) | 8 |")
    )
    titles = [ax.get_title() for ax in saved["ring2d_samples.png"].axes if ax.get_title()]
    assert titles[0] == "exact reference" and titles[1].startswith(f"★ {at8} @8")
    assert sum(t.startswith("★") for t in titles) == 1  # only the solver recommended at the figure's NFE
