"""``torchrun --nproc-per-node 2 -m samplekit sample ... --out DIR`` (gloo, CPU): ranks draw disjoint
index ranges in chunks, rank 0 merges, and the set is bit-identical to one process with one seed per
sample, whatever --batch-size."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import samplekit as sk
from samplekit.distributed import shard
from samplekit.targets import ring2d

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("n, size", [(10, 2), (7, 3), (2, 4), (1000, 7)])
def test_shards_are_disjoint_and_cover_every_sample(n, size):
    ranges = [shard(n, r, size) for r in range(size)]
    assert ranges[0][0] == 0 and ranges[-1][1] == n
    assert all(r0[1] == r1[0] for r0, r1 in zip(ranges, ranges[1:]))
    assert max(b - a for a, b in ranges) - min(b - a for a, b in ranges) <= 1


def test_two_gloo_ranks_give_the_single_process_set(tmp_path):
    """An int --seed S under torchrun seeds sample i with S + i: the union equals sk.sample with those seeds
    (a stochastic solver, so every step's noise is checked), with chunks of 3 that straddle the ranks."""
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), SAMPLEKIT_DIST_BACKEND="gloo")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "samplekit",
        "sample",
        "--solver",
        "dpmpp_2m_sde",
        "--nfe",
        "12",
        "-n",
        "11",
        "--seed",
        "3",
        "--batch-size",
        "3",
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("wrote 11 samples") == 1  # rank 0 alone reports
    with np.load(out / "samples.npz") as data:
        got, seeds = data["samples"], data["seed"]
    assert list(seeds) == list(range(3, 14))
    model = ring2d().score_model(sk.VPSDE())
    want = sk.sample(model, "dpmpp_2m_sde", nfe=12, num_samples=11, seed=list(range(3, 14)), progress=False)
    assert np.array_equal(got, want.samples.numpy())
    assert not (out / "chunks").exists()
