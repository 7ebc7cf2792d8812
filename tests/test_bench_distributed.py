"""`torchrun --nproc-per-node 2 -m samplekit bench` (gloo on CPU): cells dealt to ranks, one shard per rank,
rank 0's table identical to a single process's; a rank's lost cells are redone on rerun."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from samplekit.bench.command import bench_command

SUITE = """
name = "dist"
targets = ["ring2d"]
nfe = [4, 8]
seeds = [0, 1]
num_samples = 300
metrics = ["sliced_w2", "logp_gap", "mode_tv"]
tolerances = [0.05]
max_nfe = 300
solvers = ["ode_euler", "euler_maruyama", "dpmpp_2m", "ode_bosh3"]
"""

TORCHRUN = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
pytestmark = pytest.mark.skipif(TORCHRUN is None, reason="torchrun is not installed")


def torchrun(suite: Path, out: Path, *extra: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SAMPLEKIT_DISABLE_PLUGINS": "samplekit_models"}
    proc = subprocess.run(
        [
            TORCHRUN,
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "samplekit",
            "bench",
            "--suite",
            str(suite),
            "--out",
            str(out),
            "--no-plots",
            *(extra or ("--no-progress",)),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def keys(path: Path) -> list[str]:
    return [json.loads(line)["key"] for line in path.read_text().splitlines()]


@pytest.fixture
def suite(tmp_path):
    path = tmp_path / "dist.toml"
    path.write_text(SUITE)
    return path


def test_two_ranks_write_disjoint_shards_and_the_single_process_table(tmp_path, suite):
    single = CliRunner().invoke(
        bench_command, ["--suite", str(suite), "--out", str(tmp_path / "one"), "--no-progress", "--no-plots"]
    )
    assert single.exit_code == 0, single.output
    out = tmp_path / "two"
    output = torchrun(suite, out, "--csv")  # with the progress bar
    r0, r1 = keys(out / "results.rank0.jsonl"), keys(out / "results.rank1.jsonl")
    assert r0 and r1 and not set(r0) & set(r1)
    total = len(r0) + len(r1)
    assert f"{total} cells ok, 0 failed, 0 skipped, 0 already done (all ranks)" in output  # every rank's cells
    bars = {
        line.split(":")[0].strip() for line in output.replace("\r", "\n").splitlines() if "cell" in line and "%" in line
    }
    assert bars == {"bench (2 ranks)"} and f"{total}/{total}" in output  # one bar, rank 0's, of the whole run
    assert output.count("## Recommended") == 1
    assert sorted(r0 + r1) == sorted(keys(tmp_path / "one" / "results.jsonl"))
    assert not (out / "results.jsonl").exists() and not (out / ".lock").exists()
    assert (out / "table.md").read_text() == (tmp_path / "one" / "table.md").read_text()


@pytest.mark.slow
def test_a_rank_redoes_only_its_lost_cells(tmp_path, suite):
    out = tmp_path / "two"
    torchrun(suite, out)
    table = (out / "table.md").read_text()
    shard = out / "results.rank1.jsonl"
    lines = shard.read_text().splitlines(keepends=True)
    shard.write_text("".join(lines[:-3]))
    before0 = (out / "results.rank0.jsonl").read_text()
    torchrun(suite, out)
    assert (out / "results.rank0.jsonl").read_text() == before0  # rank 0 had nothing to do
    assert len(shard.read_text().splitlines()) == len(lines)
    assert (out / "table.md").read_text() == table
