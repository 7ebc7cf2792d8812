"""Retrain the shipped 2-D model: a TimeMLP eps-network trained by DSM on ring2d samples under the VP SDE.

    python scripts/train_ring2d_mlp.py [--steps 6000] [--out DIR]

The training data are 20,000 exact samples of ``samplekit.targets.ring2d()`` (seed 0), so the
exact answer is known; the model is written in samplekit's native format (model.safetensors +
samplekit.json) and read back with ``sk.load_model(dir, loader="samplekit")``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

WEIGHTS = Path(__file__).resolve().parents[1] / "plugins" / "samplekit_models" / "weights"
DEFAULT_OUT = WEIGHTS / "ring2d_mlp"
ARCH = {"dim": 2, "hidden": 128, "depth": 3, "time_features": 16}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    from samplekit.loading import save_model
    from samplekit.sde import VPSDE
    from samplekit.targets import ring2d
    from samplekit.training.nets import TimeMLP
    from samplekit.training.train import Trainer

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    sde = VPSDE()
    data = ring2d().sample(20_000, generator=torch.Generator().manual_seed(args.seed), dtype=torch.float32)
    net = TimeMLP(**ARCH)
    trainer = Trainer(
        net,
        sde,
        data,
        parametrization="eps",
        loss="dsm",
        weighting="eps",
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
    )
    start = time.time()
    history = trainer.fit(args.steps)
    seconds = time.time() - start
    final = sum(history[-200:]) / len(history[-200:])
    save_model(
        args.out,
        net,
        "mlp",
        ARCH,
        "eps",
        sde,
        (2,),
        extra={
            "name": "ring2d_mlp",
            "training": {
                "data": "ring2d, 20000 exact samples",
                "loss": "dsm",
                "weighting": "eps",
                "steps": args.steps,
                "batch_size": args.batch_size,
                "lr": args.lr,
                "seed": args.seed,
                "seconds": round(seconds, 1),
                "final_loss_mean200": round(final, 5),
                "parameters": sum(p.numel() for p in net.parameters()),
            },
        },
    )
    print(json.dumps({"seconds": round(seconds, 1), "final_loss": round(final, 5)}))


if __name__ == "__main__":
    main()
