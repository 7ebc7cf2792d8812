"""Robust benchmark runs: overrides of unselected targets, all unknown names at once, the default --out,
the lock on --out (live and stale), a torn last line, incomplete records, and kill -9 then rerun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from samplekit.bench.command import bench_command

REPO = Path(__file__).resolve().parents[1]
# the command alone (as `samplekit bench` runs it), independent of how the CLI groups its commands
BENCH_MAIN = "from samplekit.bench.command import bench_command; bench_command()"

SMALL = """
name = "small"
targets = ["ring2d"]
nfe = [4, 8]
seeds = [0, 1]
num_samples = 200
metrics = ["sliced_w2", "logp_gap"]
solvers = ["ode_euler", "euler_maruyama"]
"""


@pytest.fixture
def suite(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


def invoke(*args):
    return CliRunner().invoke(bench_command, ["--no-progress", "--no-plots", *map(str, args)])


def test_overrides_of_targets_not_selected_are_ignored(tmp_path):
    # the default suite overrides digits_unet; selecting ring2d alone must not trip on it
    result = invoke(
        "--targets",
        "ring2d",
        "--solvers",
        "ode_euler",
        "--nfe",
        "4",
        "--seeds",
        "0",
        "-n",
        "100",
        "--metrics",
        "sliced_w2",
        "--out",
        tmp_path / "o",
    )
    assert result.exit_code == 0, result.output
    table = (tmp_path / "o" / "table.md").read_text()
    assert "## ring2d (vp)" in table and "digits_unet" not in table + result.output


def test_every_unknown_name_is_reported_at_once_before_any_work(tmp_path, suite):
    result = invoke(
        "--suite",
        suite,
        "--out",
        tmp_path / "o",
        "--targets",
        "ring2d,ring2dd",
        "--solvers",
        "ode_euler,no_such_solver",
        "--metrics",
        "sliced_w2,swd",
        "--sdes",
        "vp,vpp",
    )
    assert result.exit_code != 0
    for name in ("target 'ring2dd'", "solver 'no_such_solver'", "metric 'swd'", "sde 'vpp'"):
        assert name in result.output, result.output
    assert "4 unknown name(s)" in result.output and not (tmp_path / "o").exists()


def test_the_default_out_is_under_out_never_the_committed_results(tmp_path, suite, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "benchmarks" / "results" / "small").mkdir(parents=True)
    result = invoke("--suite", suite)
    assert result.exit_code == 0, result.output
    (run,) = (tmp_path / "out").iterdir()  # a fresh out/<time>-small/
    assert run.name.endswith("-small") and (run / "table.md").is_file()
    assert not any((tmp_path / "benchmarks" / "results" / "small").iterdir())


def test_a_second_run_on_the_same_out_is_refused_and_a_stale_lock_taken_over(tmp_path, suite):
    out = tmp_path / "o"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / ".lock").write_text(f"{holder.pid} {os.uname().nodename}")
        result = invoke("--suite", suite, "--out", out)
        assert result.exit_code != 0
        assert f"another `samplekit bench` (pid {holder.pid}) is writing to" in result.output
        assert "pass another --out" in result.output and not (out / "results.jsonl").exists()
    finally:
        holder.kill()
        holder.wait()
    result = invoke("--suite", suite, "--out", out)  # its process is gone: the lock is stale
    assert result.exit_code == 0, result.output
    assert f"took over a stale lock of pid {holder.pid}" in result.output
    assert not (out / ".lock").exists()  # released at the end


def test_a_torn_last_line_is_dropped_with_a_warning_and_the_cell_rerun(tmp_path, suite):
    clean = invoke("--suite", suite, "--out", tmp_path / "clean")
    out = tmp_path / "o"
    assert invoke("--suite", suite, "--out", out).exit_code == 0
    path = out / "results.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # died while writing
    result = invoke("--suite", suite, "--out", out)
    assert result.exit_code == 0, result.output
    assert f"its last line {len(lines)} is cut short" in result.output and "1 cells ok" in result.output
    assert all(json.loads(line) for line in path.read_text().splitlines())  # repaired, whole lines
    assert (out / "table.md").read_text() == (tmp_path / "clean" / "table.md").read_text()
    assert clean.exit_code == 0


def test_a_corrupt_line_before_the_last_still_refuses(tmp_path, suite):
    out = tmp_path / "o"
    assert invoke("--suite", suite, "--out", out).exit_code == 0
    path = out / "results.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    bad = b"".join(lines[:3] + [b'{"key": "x", "stat\n'] + lines[3:])
    path.write_bytes(bad)
    result = invoke("--suite", suite, "--out", out)
    assert result.exit_code != 0 and "line 4 is corrupt" in result.output and "Traceback" not in result.output
    assert path.read_bytes() == bad


def test_records_with_missing_fields_are_reported_and_recomputed(tmp_path, suite):
    invoke("--suite", suite, "--out", tmp_path / "clean")
    out = tmp_path / "o"
    assert invoke("--suite", suite, "--out", out).exit_code == 0
    path = out / "results.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    del records[3]["metrics"]
    del records[4]["status"]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = invoke("--suite", suite, "--out", out)
    assert result.exit_code == 0, result.output
    assert "line 4: record lacks metrics" in result.output and "line 5: record lacks status" in result.output
    assert "2 cells ok" in result.output
    assert (out / "table.md").read_text() == (tmp_path / "clean" / "table.md").read_text()


def _bench(suite: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SAMPLEKIT_DISABLE_PLUGINS": "samplekit_models"}
    return subprocess.Popen(
        [sys.executable, "-c", BENCH_MAIN, "--suite", str(suite), "--out", str(out), "--no-progress", "--no-plots"],
        cwd=tmp_cwd(out),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def tmp_cwd(out: Path) -> Path:
    return out.parent


def test_kill_9_mid_run_then_rerun_gives_the_uninterrupted_table(tmp_path):
    suite = tmp_path / "k.toml"
    suite.write_text(
        SMALL.replace("[4, 8]", "[4, 8, 16, 32]")
        .replace("num_samples = 200", "num_samples = 400")
        .replace('"euler_maruyama"]', '"euler_maruyama", "ode_heun", "ddpm"]')
    )
    clean = invoke("--suite", suite, "--out", tmp_path / "clean")
    assert clean.exit_code == 0, clean.output
    out = tmp_path / "o"
    results = out / "results.jsonl"
    proc = _bench(suite, out)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if results.exists() and len(results.read_bytes().splitlines()) >= 6:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed: " + proc.stdout.read().decode()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (out / ".lock").exists()  # left behind by the killed run
    done = len(results.read_bytes().splitlines())
    rerun = _bench(suite, out)
    output = rerun.communicate(timeout=300)[0].decode()
    assert rerun.returncode == 0, output
    assert f"{done} already done" in output or f"{done - 1} already done" in output, output
    assert (out / "table.md").read_text() == (tmp_path / "clean" / "table.md").read_text()
