"""README figures of conditional generation on the shipped digits UNet.

    python benchmarks/conditioning/digits_figures.py

guided_digits.png: classifier guidance with the shipped noise-conditional classifier, one row per class
0..9 (scale w = 2, ddim, 40 NFE = 20 steps x (UNet + classifier)).
inpainted_digits.png: one held-out digit of each class per row: the observation (top half known, the
unknown bottom shown grey) | completions (replacement, ddim, 40 NFE) | the original.
digits_figures.json: what the clean-image digit classifier (the digits_fd metric's) reads in them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

import samplekit as sk
from samplekit.conditioning.per_sample import PerSampleInpainting
from samplekit.io.images import save_image_grid
from samplekit_models import classifier as judge
from samplekit_models import targets as shipped
from samplekit_models.digits_classifier import load_digits_classifier

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: recorded.py
import recorded  # noqa: E402


def guided(model, per_class: int, scale: float, nfe: int, seed: int):
    labels = torch.arange(10).repeat_interleave(per_class)
    clf = sk.guidance.classifier(model, load_digits_classifier(model.sde), y=labels, scale=scale)
    x = sk.sample(clf, "ddim", nfe=nfe, num_samples=labels.numel(), seed=seed, progress=False).samples
    return x, labels


def inpainted(model, completions: int, nfe: int, seed: int):
    x, y = shipped.DigitsUNetTarget().held_out()
    g = torch.Generator().manual_seed(seed)
    pick = torch.stack(
        [torch.nonzero(y == c).flatten()[torch.randint(0, int((y == c).sum()), (1,), generator=g)] for c in range(10)]
    ).flatten()
    originals, labels = x[pick], y[pick]
    known = torch.zeros(1, 8, 8, dtype=torch.bool)
    known[:, :4] = True
    obs = PerSampleInpainting(known, originals.repeat_interleave(completions, 0))
    filled = sk.sample(
        model,
        sk.conditioning.replacement("ddim", obs),
        nfe=nfe,
        num_samples=10 * completions,
        seed=seed,
        progress=False,
    ).samples.double()
    shown = originals.clone()
    shown[:, ~known] = 0.0  # unknown pixels in grey
    rows = torch.cat([shown[:, None], filled.reshape(10, completions, 1, 8, 8), originals[:, None]], dim=1)
    return rows, filled, labels.repeat_interleave(completions), known, originals


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nfe", type=int, default=40)
    parser.add_argument("--scale", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="output directory (default: see --record)")
    recorded.add_flag(parser)
    args = parser.parse_args(argv)
    args.out = args.out or recorded.output_dir(HERE, args.record, "conditioning")
    torch.set_num_threads(1)
    model = sk.load_model(shipped.DIGITS_DIR, loader="diffusers")

    x, labels = guided(model, 10, args.scale, args.nfe, args.seed)
    save_image_grid(args.out / "guided_digits.png", x, ncols=10)
    rows, filled, sources, known, originals = inpainted(model, 6, args.nfe, args.seed)
    save_image_grid(args.out / "inpainted_digits.png", rows.flatten(0, 1), ncols=rows.shape[1])

    per_class = (judge.classify(x) == labels).double().reshape(10, -1).mean(1)
    known_error = (filled.reshape(10, 6, 1, 8, 8) - originals[:, None])[:, :, known].abs().max()
    info = {
        "guided": {
            "solver": "ddim",
            "nfe": args.nfe,
            "scale": args.scale,
            "seed": args.seed,
            "fraction_of_asked_class": round(float(per_class.mean()), 3),
            "per_class": [round(float(v), 3) for v in per_class],
        },
        "inpainted": {
            "solver": "ddim+replacement",
            "nfe": args.nfe,
            "seed": args.seed,
            "known": "top half",
            "fraction_of_source_class": round(float((judge.classify(filled) == sources).double().mean()), 3),
            "known_half_max_abs_error": round(float(known_error), 4),
        },
    }
    (args.out / "digits_figures.json").write_text(json.dumps(info, indent=1) + "\n")
    print(json.dumps(info))


if __name__ == "__main__":
    main()
