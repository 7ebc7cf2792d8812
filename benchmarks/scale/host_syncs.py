"""Host synchronisations per sampling step: reads of the samples' data on the host (bool, item, float,
int, tolist, cpu, numpy on any tensor computed from x_T) during one ``sk.sample`` at two budgets, for
every registered fixed-step solver.  Syncs per step = (count at NFE 24 - count at NFE 12) / (steps
difference).  Run: ``python benchmarks/scale/host_syncs.py`` (the recorded table is in README.md here)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
import samplekit as sk  # noqa: E402
from sync_count import count_syncs  # noqa: E402


def main() -> None:
    target = sk.GaussianMixture(
        torch.tensor([0.5, 0.5]), torch.tensor([[-2.0, 0.0], [2.0, 0.0]]), 0.1 * torch.eye(2).expand(2, 2, 2)
    )
    model = target.score_model(sk.VPSDE())
    print("| solver | syncs at NFE 12 | syncs at NFE 24 | extra steps | syncs per step |")
    print("|---|---|---|---|---|")
    for info in sk.available("solver"):
        solver = sk.get_solver(info.name)
        if solver.capabilities().adaptive:
            continue
        counts, steps = [], []
        for nfe in (12, 24):
            res = {}

            def run(x, nfe=nfe, res=res):
                res["r"] = sk.sample(model, info.name, nfe=nfe, x_T=x, seed=0, progress=False)

            counts.append(count_syncs(run, torch.randn(8, 2)))
            steps.append(res["r"].n_steps)
        per = (counts[1] - counts[0]) / max(steps[1] - steps[0], 1)
        print(f"| {info.name} | {counts[0]} | {counts[1]} | {steps[1] - steps[0]} | {per:.2f} |")


if __name__ == "__main__":
    main()
