"""Retrain the shipped flow-matching digits UNet (``digits_flow``): rectified flow, noise at t = 1.

    python scripts/train_digits_flow.py [--steps 1500] [--out DIR]

Conditional flow matching on the linear interpolant (Liu et al. 2023; Lipman et al. 2023):
x_t = (1 - t) x0 + t eps, t ~ U[0, 1], eps ~ N(0, I); the network regresses the velocity
u = dx_t/dt = eps - x0 (loss |u_theta(x_t, t) - (eps - x0)|^2), seeing timestep 1000 t as SD3's
transformer does.  The digits UNet of ``train_digits_unet.py`` (unconditional).  Written in the native
format with parametrisation ``flow`` and SDE ``rectified_flow`` (time convention ``noise_at_1``), read
by ``sk.load_model(dir)``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import digits_recipe
import torch

WEIGHTS = Path(__file__).resolve().parents[1] / "plugins" / "samplekit_models" / "weights"
DEFAULT_OUT = WEIGHTS / "digits_flow"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    digits_recipe.add_arguments(parser, steps=1500)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    from samplekit.loading import save_model
    from samplekit.sde import RectifiedFlowSDE
    from samplekit.training.nets import UNet2D
    from samplekit_models.digits import SHAPE, load_digits_split

    torch.manual_seed(args.seed)
    x_train, y_train, _, _ = load_digits_split()
    options = {"config": dict(digits_recipe.UNET_CONFIG), "time_scale": 1000.0}
    net = UNet2D(**options)

    def loss_fn(net, x0, y, g):
        t = torch.rand(x0.shape[0], generator=g)
        eps = torch.randn(x0.shape, generator=g)
        tt = t.reshape(-1, 1, 1, 1)
        return (net((1 - tt) * x0 + tt * eps, t) - (eps - x0)).pow(2).mean()

    ema, info = digits_recipe.train(net, loss_fn, x_train, y_train, args)
    info.update({"loss": "rectified flow: |u_theta(x_t, t) - (eps - x0)|^2, t ~ U[0, 1]"})
    save_model(
        args.out,
        ema,
        "unet2d",
        options,
        "flow",
        RectifiedFlowSDE(),
        SHAPE,
        extra={"name": "digits_flow", "time_convention": "noise_at_1", "training": info},
    )
    print(json.dumps(info))


if __name__ == "__main__":
    main()
