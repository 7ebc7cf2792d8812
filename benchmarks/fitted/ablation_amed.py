"""AMED ablation on a small case: the paper's setting (grid fixed at the best published schedule,
``learn_grid=False``) against the grid learned too, and the fitted parameters against AMED's defaults
(r = 1/2, c = 1: DPM-Solver-2 with the analytical first step).  gmm16_full under VP, held-out distance as
run.py.  Writes ablation_amed.md.

    python benchmarks/fitted/ablation_amed.py
"""

from __future__ import annotations

from pathlib import Path

import torch
from run import EVAL_SEED, distance, model_of

import samplekit as sk

HERE = Path(__file__).parent


def main() -> None:
    torch.set_num_threads(1)
    model = model_of("gmm16_vp")
    x_T = model.sde.prior_sample((256, 16), generator=torch.Generator().manual_seed(EVAL_SEED), dtype=torch.float64)
    ref = sk.decode(model, x_T, rtol=1e-8, atol=1e-8)
    lines = [
        "# AMED ablation (gmm16_full, VP, 256 held-out x_T; fits on 256 own draws, 100 Adam steps)",
        "",
        "| nfe | defaults on best published grid | fitted r, c (paper: grid fixed) | fitted r, c + grid |",
        "|---|---|---|---|",
    ]
    for nfe in (5, 6):
        cells = []
        for learn_grid in (False, True):
            f = sk.fit_solver(model, nfe, method="amed", learn_grid=learn_grid, num_fit=256, iters=100, cache=False)
            if not cells:
                base = sk.FittedSampler(
                    **{**f.__dict__, "params": f.fit["baseline_params"], "ts": f.fit["baseline_ts"]}
                )
                cells.append(distance(sk.sample(model, base, x_T=x_T, progress=False).samples, ref))
            cells.append(distance(sk.sample(model, f, x_T=x_T, progress=False).samples, ref))
        lines.append(f"| {nfe} | " + " | ".join(f"{c:.4g}" for c in cells) + " |")
        print(lines[-1], flush=True)
    (HERE / "ablation_amed.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
