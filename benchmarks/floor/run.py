"""Every registered solver at a generous budget on the 2-D ring with the exact score: SW2 / noise floor.

The measurement behind tests/test_every_solver.py (which asserts ratio <= 1.5): 6000 samples in float64,
split into 3 sets of 2000, each scored against 6 fresh exact reference sets and compared with the SW2
between exact sets of the same size; VP and VE SDEs.  Budgets: NFE 1000 (stochastic), 200 (deterministic),
rtol = atol = 1e-6 (adaptive, real NFE reported).

    .venv/bin/python benchmarks/floor/run.py      # writes benchmarks/floor/results.md
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

import samplekit as sk
from samplekit.bench.noise_floor import distance_and_floor, floor_sdes, generous_budget, solver_families
from samplekit.targets import ring2d

HERE = Path(__file__).parent
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: recorded.py
import recorded  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    mix, rows, sdes = ring2d(), [], floor_sdes()
    for info in sorted(sk.available("solver"), key=lambda c: c.name):
        for family in solver_families(info):
            model = mix.score_model(sdes[family])
            start = time.perf_counter()
            res = sk.sample(
                model, info.name, num_samples=6000, seed=0, dtype=torch.float64, progress=False, **generous_budget(info)
            )
            pairs = [distance_and_floor(c, mix, seed=123 + k) for k, c in enumerate(res.samples.chunk(3))]
            got, floor = (sum(p[i] for p in pairs) / 3 for i in (0, 1))
            rows.append((info.name, info.plugin, family, res.nfe, got, floor, time.perf_counter() - start))
            print(*rows[-1], flush=True)
    lines = [
        "# Every solver at a generous budget: SW2 / exact-sample noise floor (2-D ring, exact score)",
        "",
        __doc__.split("\n\n")[1].replace("\n", " "),
        "",
        "| solver | plugin | SDE | NFE | SW2 | floor | ratio | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {n} | {p} | {f} | {nfe} | {g:.4f} | {fl:.4f} | {g / fl:.2f} | {s:.1f} |" for n, p, f, nfe, g, fl, s in rows
    ]
    (recorded.output_dir(HERE, "--record" in sys.argv[1:], "floor") / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
