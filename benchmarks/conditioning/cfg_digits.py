"""The README's classifier-free guidance figure: the shipped class-conditional digits UNet, one row per class.

    python benchmarks/conditioning/cfg_digits.py [--scale 3] [--solver dpmpp_2m] [--nfe 20]

Draws 10 digits of each class 0..9 in one run (per-sample labels, ``digits_cond_unet`` under
``sk.guidance.classifier_free`` on its one network) and the same number unguided (the null label), and
writes ``cfg_digits.png`` (row k: class k) and ``cfg_digits.json``: the share of samples of each class that
the shipped digit classifier (the digits_fd network) reads as that class, guided at each scale and unguided.
One class from the command line: ``samplekit sample --model digits_cond_unet --class 3 --guidance 3``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

import samplekit as sk
from samplekit.io.images import save_image_grid
from samplekit_models import classifier as judge
from samplekit_models import targets as shipped

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: recorded.py
import recorded  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=3.0, help="the guidance scale of the figure")
    parser.add_argument("--scales", default="1,2,3", help="scales whose per-class accuracy is recorded")
    parser.add_argument("--solver", default="dpmpp_2m")
    parser.add_argument("--nfe", type=int, default=20)
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="the figure (default: see --record)")
    recorded.add_flag(parser)
    args = parser.parse_args(argv)
    args.out = args.out or recorded.output_dir(HERE, args.record, "conditioning") / "cfg_digits.png"

    torch.set_num_threads(1)
    target = shipped.DigitsCondUNetTarget()
    model = target.model()
    labels = torch.arange(10).repeat_interleave(args.per_class)
    record = {
        "solver": args.solver,
        "nfe": args.nfe,
        "per_class": args.per_class,
        "seed": args.seed,
        "accuracy_by_scale": {},
    }
    scales = sorted({float(s) for s in args.scales.split(",")} | {args.scale})
    for scale in scales:
        start = time.time()
        res = sk.sample(
            target.classifier_free(model, labels, scale),
            args.solver,
            nfe=args.nfe,
            num_samples=labels.numel(),
            seed=args.seed,
            progress=False,
        )
        per_class = (judge.classify(res.samples) == labels).double().reshape(10, -1).mean(1)
        record["accuracy_by_scale"][f"{scale:g}"] = {
            "mean": round(float(per_class.mean()), 3),
            "per_class": [round(float(a), 2) for a in per_class],
            "seconds": round(time.time() - start, 1),
        }
        if scale == args.scale:
            save_image_grid(args.out, res.samples, ncols=args.per_class)
    res = sk.sample(model, args.solver, nfe=args.nfe // 2, num_samples=labels.numel(), seed=args.seed, progress=False)
    counts = torch.bincount(judge.classify(res.samples), minlength=10)
    record["unguided"] = {
        "nfe": args.nfe // 2,
        "share_of_each_class": [round(float(c) / labels.numel(), 2) for c in counts],
    }
    record["command"] = "python benchmarks/conditioning/cfg_digits.py " + " ".join(argv or [])
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record))


if __name__ == "__main__":
    main()
