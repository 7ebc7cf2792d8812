"""Big sets in chunks: ``sample(batch_size=k)`` equals one batch with per-sample seeds (inputs, x_T and
seeds sliced with their samples); ``--out DIR`` writes whole chunks atomically, skips finished ones on a
rerun, and survives kill -9 with the identical final set."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import samplekit as sk
from samplekit.chunks import ChunkDir, chunk_ranges
from samplekit.errors import OutputError
from samplekit.targets import ring2d

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("solver", ["ode_euler", "euler_maruyama", "dpmpp_2m_sde", "sde_srk"])
def test_chunks_equal_one_batch_with_per_sample_seeds(solver):
    model = ring2d().score_model(sk.VPSDE())
    seeds = list(range(40, 51))
    whole = sk.sample(model, solver, nfe=8, num_samples=11, seed=seeds, progress=False)
    for k in (1, 4, 11, 50):
        calls = model.nfe
        res = sk.sample(model, solver, nfe=8, num_samples=11, seed=seeds, batch_size=k, progress=False)
        assert torch.equal(res.samples, whole.samples), k
        assert res.nfe == whole.nfe
        assert model.nfe - calls == whole.nfe * len(chunk_ranges(0, 11, k))  # counted at the model: per chunk


def test_per_sample_inputs_and_x_T_follow_their_samples():
    """A network input bound per sample (a shift per row) and x_T are sliced with the chunk's samples."""
    calls = []

    def net(x, t, shift):
        calls.append(x.shape[0])
        return 0.3 * x + shift[:, None]

    shift = torch.linspace(-1, 1, 9, dtype=torch.float64)
    model = sk.ScoreModel.from_eps(net, sk.VPSDE(), (2,)).condition(shift=shift)
    x_T = torch.randn(9, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    whole = sk.sample(model, "ddim", nfe=6, x_T=x_T, seed=0, progress=False)
    calls.clear()
    chunked = sk.sample(model, "ddim", nfe=6, x_T=x_T, seed=0, batch_size=4, progress=False)
    assert torch.equal(chunked.samples, whole.samples)
    assert sorted(set(calls)) == [1, 4]  # the network saw chunks of 4, 4, 1 rows


def test_an_int_seed_gives_chunk_k_seed_plus_k():
    model = ring2d().score_model(sk.VPSDE())
    res = sk.sample(model, "euler_maruyama", nfe=5, num_samples=7, seed=10, batch_size=3, progress=False)
    parts = [
        sk.sample(model, "euler_maruyama", nfe=5, num_samples=b - a, seed=10 + k, progress=False).samples
        for k, (a, b) in enumerate(chunk_ranges(0, 7, 3))
    ]
    assert torch.equal(res.samples, torch.cat(parts))


@pytest.mark.parametrize("bad", [0, -2, 1.5, "4"])
def test_bad_batch_size_is_refused_before_any_call(bad):
    model = ring2d().score_model(sk.VPSDE())
    with pytest.raises(sk.SamplekitError, match="batch_size"):
        sk.sample(model, nfe=5, num_samples=4, batch_size=bad, progress=False)
    assert model.nfe == 0


def test_chunk_dir_is_atomic_indexed_and_refuses_another_run(tmp_path):
    store = ChunkDir(tmp_path, {"solver": "ddim", "nfe": 5})
    store.open()
    store.write(0, 2, torch.ones(2, 3), 5)
    assert store.done(0, 2) and not store.done(2, 4)
    assert [p.name for p in store.dir.iterdir() if p.name.startswith(".")] == []  # no temporary left
    with pytest.raises(OutputError, match="another run .*nfe.*--force"):
        ChunkDir(tmp_path, {"solver": "ddim", "nfe": 6}).open()
    ChunkDir(tmp_path, {"solver": "ddim", "nfe": 6}).open(force=True)  # --force starts over
    assert not store.done(0, 2)


def _cli(out, *extra):
    """samplekit sample with chunks slow enough to kill between them (150 steps on the exact ring)."""
    cmd = [
        sys.executable,
        "-m",
        "samplekit",
        "sample",
        "--solver",
        "euler_maruyama",
        "--nfe",
        "150",
        "-n",
        "24",
        "--per-sample-seeds",
        "--seed",
        "5",
        *extra,
        "--out",
        str(out),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(proc) -> None:
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()


def test_kill_9_mid_run_then_rerun_gives_the_identical_set(tmp_path):
    model = ring2d().score_model(sk.VPSDE())  # what --target ring2d samples (float32, vp)
    want = sk.sample(
        model, "euler_maruyama", nfe=150, num_samples=24, seed=list(range(5, 29)), progress=False
    ).samples.numpy()
    out, chunks = tmp_path / "run", tmp_path / "run" / "chunks"
    proc = _cli(out, "--batch-size", "2")
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline and len(list(chunks.glob("0*.npz"))) < 3:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = sorted(p.name for p in chunks.glob("0*.npz"))
    assert 3 <= len(done) < 12 and not (out / "samples.npz").exists(), done  # killed mid-run
    saved = tmp_path / "saved"
    shutil.copytree(out, saved)
    _finish(_cli(out, "--batch-size", "2"))
    assert np.array_equal(np.load(out / "samples.npz")["samples"], want)
    assert not chunks.exists()  # merged: the chunks are gone
    # the rerun skipped the finished chunks: one of them, marked, shows up as it is in the merged set
    with np.load(saved / "chunks" / done[0]) as data:
        marked = np.full_like(data["samples"], 7.0)
    np.savez(saved / "chunks" / done[0], samples=marked, nfe=150)
    a = int(done[0].split("-")[0])
    _finish(_cli(saved, "--batch-size", "2"))
    got = np.load(saved / "samples.npz")["samples"]
    assert np.array_equal(got[a : a + 2], marked)
    assert np.array_equal(np.delete(got, [a, a + 1], 0), np.delete(want, [a, a + 1], 0))


def test_grad_is_passed_to_every_chunk():
    weight = torch.nn.Parameter(torch.tensor(0.5, dtype=torch.float64))
    model = sk.ScoreModel.from_eps(lambda x, t: weight * x, sk.VPSDE(), (2,))
    res = sk.sample(
        model, "ddim", nfe=4, num_samples=5, seed=0, batch_size=2, grad=True, dtype=torch.float64, progress=False
    )
    res.samples.sum().backward()
    assert weight.grad is not None and torch.isfinite(weight.grad)
    plain = sk.sample(model, "ddim", nfe=4, num_samples=5, seed=0, batch_size=2, progress=False)
    assert not plain.samples.requires_grad
