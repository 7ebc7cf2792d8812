"""Digits quality per solver and NFE on the shipped diffusers UNet (plugin samplekit_models).

    python benchmarks/digits/run.py [--num-samples 200] [--nfe 10,20,50] [--threads 1]

For every registered solver: samples from ``weights/digits_unet`` (DiscreteVPSDE of its DDPM schedule,
float32, seed 0), scored against held-out digits by the shipped digit classifier:
  FD  Frechet distance of its 64-D penultimate features (FID's recipe on 8x8 digits);
  TV  total variation between predicted class frequencies of samples and reference (class balance).
Fixed-step solvers run at each NFE with their default schedule (ddpm / ddim also on the ``discrete``
training-timestep grid); adaptive ones at rtol = atol = 0.05 with a cap of 100 calls, shown at their
real NFE.  Floors: the same metrics between the two held-out halves (``data floor``).
Writes results.json and results.md beside this script.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

import samplekit as sk
from samplekit.plugins import get_registry
from samplekit.solver import SolverError

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: recorded.py
import recorded  # noqa: E402


def rows_to_run(nfes):
    registry = get_registry()
    for c in registry.available("solver"):
        adaptive = bool(c.info.get("adaptive", getattr(c.factory, "adaptive", False)))
        if adaptive:
            yield c.name, c.name, {"rtol": 0.05, "atol": 0.05}, [100], True
            continue
        yield c.name, c.name, {}, nfes, False
        if c.name in ("ddpm", "ddim"):
            yield f"{c.name} (discrete)", c.name, {"schedule": "discrete"}, nfes, False


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    recorded.add_flag(parser)
    parser.add_argument("--num-samples", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--nfe", default="10,20,50")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = recorded.output_dir(HERE, args.record, "digits")
    nfes = [int(n) for n in args.nfe.split(",")]
    torch.set_num_threads(args.threads)

    from samplekit_models.classifier import digits_class_balance, digits_fd
    from samplekit_models.targets import DIGITS_DIR, DigitsUNetTarget

    target = DigitsUNetTarget()
    ref, other = target.reference(args.num_samples, 0), target.floor_reference(args.num_samples, 0)
    floor = {"fd": digits_fd(other, ref), "tv": digits_class_balance(other, ref)}
    model = sk.load_model(DIGITS_DIR, loader="diffusers")
    rows, start = [], time.time()
    for label, name, options, budgets, adaptive in rows_to_run(nfes):
        for nfe in budgets:
            t0 = time.time()
            try:
                res = sk.sample(
                    model, name, nfe=nfe, num_samples=args.num_samples, seed=args.seed, progress=False, **options
                )
            except (SolverError, ValueError, FloatingPointError) as exc:
                rows.append({"solver": label, "nfe": nfe, "adaptive": adaptive, "error": str(exc).splitlines()[0]})
                print(label, nfe, "error:", rows[-1]["error"], flush=True)
                continue
            row = {
                "solver": label,
                "nfe": nfe,
                "nfe_spent": res.nfe,
                "adaptive": adaptive,
                "fd": digits_fd(res.samples, ref),
                "tv": digits_class_balance(res.samples, ref),
                "seconds": round(time.time() - t0, 1),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    meta = {
        "num_samples": args.num_samples,
        "seed": args.seed,
        "nfe": nfes,
        "model": "weights/digits_unet",
        "sde": repr(model.sde),
        "floor": floor,
        "seconds": round(time.time() - start, 1),
        "torch": torch.__version__,
    }
    (out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    (out / "results.md").write_text(render(meta, rows, nfes) + "\n")


def render(meta, rows, nfes) -> str:
    out = [
        "# Digits benchmark (recorded)",
        "",
        f"The shipped UNet2DModel on 8x8 digits ({meta['sde']}), {meta['num_samples']} samples per cell, seed "
        f"{meta['seed']}, float32, against {meta['num_samples']} held-out digits. FD: Frechet distance on the "
        "shipped digit classifier's features; TV: total variation of predicted class frequencies (class "
        f"balance). Lower is better. Data floor (the other held-out half vs the reference): FD "
        f"{meta['floor']['fd']:.3f}, TV {meta['floor']['tv']:.3f}. Adaptive solvers: rtol = atol = 0.05, cap 100 "
        "calls, at their real NFE. Regenerate: `python benchmarks/digits/run.py`.",
        "",
        "| solver | " + " | ".join(f"FD @{n}" for n in nfes) + " | " + " | ".join(f"TV @{n}" for n in nfes) + " |",
        "|---|" + "---:|" * (2 * len(nfes)),
    ]
    labels = list(dict.fromkeys(r["solver"] for r in rows if not r["adaptive"]))
    for label in labels:
        by = {r["nfe"]: r for r in rows if r["solver"] == label}
        fd = [f"{by[n]['fd']:.3f}" if "fd" in by.get(n, {}) else ("skipped" if n in by else "") for n in nfes]
        tv = [f"{by[n]['tv']:.3f}" if "tv" in by.get(n, {}) else ("skipped" if n in by else "") for n in nfes]
        out.append(f"| {label} | " + " | ".join(fd) + " | " + " | ".join(tv) + " |")
    adaptive = [r for r in rows if r["adaptive"] and "fd" in r]
    if adaptive:
        out += ["", "| adaptive solver | NFE spent | FD | TV |", "|---|---:|---:|---:|"]
        out += [f"| {r['solver']} | {r['nfe_spent']} | {r['fd']:.3f} | {r['tv']:.3f} |" for r in adaptive]
    errors = [r for r in rows if "error" in r]
    if errors:
        out += ["", "Skipped cells (the solver's own error):", ""]
        out += [f"- {r['solver']} @ NFE {r['nfe']}: {r['error']}" for r in errors]
    out += ["", f"Total {meta['seconds']:.0f} s on CPU (torch {meta['torch']})."]
    return "\n".join(out)


if __name__ == "__main__":
    main()
