"""Samples per second of ``samplekit sample --out DIR`` on the shipped digits UNet, 1 process vs
``torchrun --standalone --nproc-per-node 2`` (gloo on CPU, one thread a process), and a check that both
sets are bit-identical (sample i seeded S + i).  Seconds are sampling + writing + merging, from the
command's own report (process start-up and imports excluded).

    OMP_NUM_THREADS=1 python benchmarks/scale/throughput.py [-n 128] [--nfe 10] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def run(procs: int, out: Path, args) -> float:
    launch = (
        [sys.executable, "-m", "samplekit"]
        if procs == 1
        else [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={procs}",
            "-m",
            "samplekit",
        ]
    )
    cmd = [
        *launch,
        "sample",
        "--model",
        args.model,
        "--solver",
        args.solver,
        "--nfe",
        str(args.nfe),
        "-n",
        str(args.n),
        "--per-sample-seeds",
        "--batch-size",
        str(args.batch_size),
        "--out",
        str(out),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return float(re.search(r"NFE, ([0-9.]+) s\)", proc.stdout).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=128)
    parser.add_argument("--nfe", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--model", default="digits_unet")
    parser.add_argument("--solver", default="dpmpp_2m")
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    print("| processes | samples | NFE | batch | seconds | samples/s | same set as 1 process |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        sets = {}
        for procs in args.procs:
            out = Path(tmp) / f"p{procs}"
            seconds = run(procs, out, args)
            sets[procs] = np.load(out / "samples.npz")["samples"]
            same = np.array_equal(sets[procs], sets[args.procs[0]])
            print(
                f"| {procs} | {args.n} | {args.nfe} | {args.batch_size} | {seconds:.2f} | {args.n / seconds:.1f} | "
                f"{same} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
