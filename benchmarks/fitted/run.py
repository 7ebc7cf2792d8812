"""Fitted solvers vs the best fixed solver x published grid, per target and NFE (see README.md).

Distance: RMS per dimension between a sampler's end points and a tight dopri5 solve (rtol = atol =
1e-8) of the same probability-flow ODE from the same held-out x_T (``EVAL_SEED``; the fits draw their
own x_T from ``seed + FIT_SEED_OFFSET`` and the optimized grids from ``optimize_schedule``'s seed 0).

    python benchmarks/fitted/run.py TARGET [--nfe 4 5 6 8 10] [--methods amed ld3 epd] [--out results.jsonl]

TARGET: gmm16_vp, gmm16_edm, gmm16_rf, digits_unet, digits_flow.  One JSON line per (target, nfe, entry).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import torch

import samplekit as sk
from samplekit.plugins import get_registry
from samplekit.timegrid import make_grid

FIXED = ("ddim", "dpmpp_2m", "dpmpp_3m", "unipc", "ipndm", "deis", "lms", "dpm_2", "dpmpp_2s", "edm_heun")
GRIDS = ("default", "karras", "logsnr", "ays")
EVAL_SEED = 424_242
N_EVAL = 256
TARGETS = {
    "gmm16_vp": ("gmm16_full", "vp"),
    "gmm16_edm": ("gmm16_full", "edm"),
    "gmm16_rf": ("gmm16_full", "rectified_flow"),
    "digits_unet": ("digits_unet", None),
    "digits_flow": ("digits_flow", None),
}


def model_of(name: str):
    target_name, sde_name = TARGETS[name]
    target = get_registry().get("target", target_name).factory()
    return target.model(sk.get_sde(sde_name) if sde_name else None)


def distance(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float(((out - ref) ** 2).mean().sqrt())


def fixed_entries(model, nfe, x_T, ref):
    rows = []
    for solver in FIXED:
        s = sk.get_solver(solver)
        for grid in GRIDS:
            try:
                probe = sk.get_solver(solver, schedule=None if grid == "default" else grid)
                ts = make_grid(probe, model, s.plan(nfe).n_steps)
                out = sk.sample(model, solver, x_T=x_T, ts=ts, progress=False)
            except Exception as exc:  # a grid that cannot serve this SDE / budget
                rows.append({"entry": f"{solver}/{grid}", "kind": "fixed", "error": str(exc)[:120]})
                continue
            rows.append(
                {
                    "entry": f"{solver}/{grid}",
                    "kind": "fixed",
                    "distance": distance(out.samples, ref),
                    "nfe_spent": out.nfe,
                }
            )
    return rows


def optimized_entries(model, nfe, x_T, ref, solvers):
    rows = []
    for solver in solvers:
        t0, n0 = time.perf_counter(), model.nfe
        ts = sk.optimize_schedule(model, solver, nfe, num_samples=128, seed=0)
        cost = (model.nfe - n0, time.perf_counter() - t0)
        out = sk.sample(model, solver, x_T=x_T, ts=ts, progress=False)
        rows.append(
            {
                "entry": f"{solver}/optimized",
                "kind": "fixed",
                "distance": distance(out.samples, ref),
                "nfe_spent": out.nfe,
                "fit_nfe": cost[0],
                "fit_seconds": cost[1],
            }
        )
    return rows


def fitted_entries(model, nfe, x_T, ref, methods, num_fit, iters):
    rows = []
    for method in methods:
        method, _, variant = method.partition("+")
        opts = {"iters": iters} if method != "optimized" else {}
        if variant == "coef":
            opts["coefficients"] = True
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fitted = sk.fit_solver(model, nfe, method=method, num_fit=num_fit, seed=0, cache=False, **opts)
        out = sk.sample(model, fitted, x_T=x_T, progress=False)
        rows.append(
            {
                "entry": f"fitted:{method}{'+' + variant if variant else ''}",
                "kind": "fitted",
                "distance": distance(out.samples, ref),
                "nfe_spent": out.nfe,
                "fit_nfe": fitted.fit["nfe_spent"],
                "fit_seconds": time.perf_counter() - t0,
                "fit_loss": fitted.fit["loss"],
                "baseline": fitted.fit["baseline"],
                "baseline_loss": fitted.fit["baseline_loss"],
                "fallback": fitted.fit["fallback"],
                "warnings": [str(w.message) for w in caught if "fell back" in str(w.message)],
                "fitted": json.loads(fitted.to_json()),
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("target", choices=sorted(TARGETS))
    ap.add_argument("--nfe", type=int, nargs="+", default=[4, 5, 6, 8, 10])
    ap.add_argument("--methods", nargs="+", default=["amed", "ld3"])
    ap.add_argument("--num-fit", type=int, default=64)
    ap.add_argument("--iters", type=int, default=150)
    ap.add_argument("--top", type=int, default=3, help="optimized grids for the top solvers of the published grids")
    ap.add_argument("--out", default="benchmarks/fitted/results.jsonl")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = model_of(args.target)
    gen = torch.Generator().manual_seed(EVAL_SEED)
    x_T = model.sde.prior_sample((N_EVAL, *model.shape), generator=gen, dtype=torch.float64)
    ref = sk.decode(model, x_T, rtol=1e-8, atol=1e-8)
    for nfe in args.nfe:
        rows = fixed_entries(model, nfe, x_T, ref)
        best_by_solver: dict[str, float] = {}
        for r in rows:
            if "distance" in r:
                s = r["entry"].split("/")[0]
                best_by_solver[s] = min(best_by_solver.get(s, float("inf")), r["distance"])
        top = sorted(best_by_solver, key=best_by_solver.get)[: args.top]
        rows += optimized_entries(model, nfe, x_T, ref, top)
        rows += fitted_entries(model, nfe, x_T, ref, args.methods, args.num_fit, args.iters)
        with open(args.out, "a") as fh:
            for r in rows:
                fh.write(json.dumps({"target": args.target, "nfe": nfe, **r}) + "\n")
        fixed = [r for r in rows if r["kind"] == "fixed" and "distance" in r]
        best = min(fixed, key=lambda r: r["distance"])
        fits = " ".join(f"{r['entry']}={r['distance']:.4g}" for r in rows if r["kind"] == "fitted")
        print(f"{args.target} nfe={nfe} best fixed {best['entry']}={best['distance']:.4g}  {fits}", flush=True)


if __name__ == "__main__":
    main()
