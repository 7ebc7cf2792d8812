"""Retrain the shipped class-conditional digits UNet (``digits_cond_unet``) for classifier-free guidance.

    python scripts/train_digits_cond_unet.py [--steps 1500] [--out DIR]

The digits UNet of ``train_digits_unet.py`` with a class embedding of 11 labels: the digits 0..9 and a
null label 10.  Each training label is replaced by the null label with probability ``--p-uncond``
(0.15), so one network gives both eps(x, t, y) and eps(x, t) for classifier-free guidance
(Ho & Salimans 2022).  Continuous VP SDE (beta 0.1..20), t ~ U[t_min, 1], x_t = alpha_t x0 + sigma_t eps,
loss |eps_theta(x_t, t, y) - eps|^2; the network sees timestep 1000 t.  Written in the native format
(``model.safetensors`` + ``samplekit.json``, architecture ``unet2d``) for ``sk.load_model(dir)``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import digits_recipe
import torch

WEIGHTS = Path(__file__).resolve().parents[1] / "plugins" / "samplekit_models" / "weights"
DEFAULT_OUT = WEIGHTS / "digits_cond_unet"
NUM_CLASSES, NULL_CLASS = 10, 10


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    digits_recipe.add_arguments(parser, steps=1500)
    parser.add_argument("--p-uncond", type=float, default=0.15, help="probability of dropping a label to null")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    from samplekit.loading import save_model
    from samplekit.sde import VPSDE
    from samplekit.training.nets import UNet2D
    from samplekit_models.digits import SHAPE, load_digits_split

    torch.manual_seed(args.seed)
    x_train, y_train, _, _ = load_digits_split()
    sde = VPSDE()
    options = {
        "config": {**digits_recipe.UNET_CONFIG, "num_class_embeds": NUM_CLASSES + 1},
        "time_scale": 1000.0,
        "null_class": NULL_CLASS,
    }
    net = UNet2D(**options)

    def loss_fn(net, x0, y, g):
        n = x0.shape[0]
        t = sde.t_min + (sde.T - sde.t_min) * torch.rand(n, generator=g)
        alpha, sigma = (c.float().reshape(-1, 1, 1, 1) for c in sde.marginal(t.double()))
        eps = torch.randn(x0.shape, generator=g)
        y = torch.where(torch.rand(n, generator=g) < args.p_uncond, torch.full_like(y, NULL_CLASS), y)
        return (net(alpha * x0 + sigma * eps, t, class_labels=y) - eps).pow(2).mean()

    ema, info = digits_recipe.train(net, loss_fn, x_train, y_train, args)
    info.update({"p_uncond": args.p_uncond, "null_class": NULL_CLASS, "loss": "eps MSE, t ~ U[t_min, 1]"})
    save_model(
        args.out,
        ema,
        "unet2d",
        options,
        "eps",
        sde,
        SHAPE,
        extra={
            "name": "digits_cond_unet",
            "conditioning": {"class_labels": {"num_classes": NUM_CLASSES, "null_class": NULL_CLASS}},
            "training": info,
        },
    )
    print(json.dumps(info))


if __name__ == "__main__":
    main()
