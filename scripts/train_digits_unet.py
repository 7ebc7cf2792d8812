"""Retrain the shipped digits UNet (diffusers ``UNet2DModel``, eps-prediction, DDPM linear betas).

    python scripts/train_digits_unet.py [--steps 2500] [--out DIR]

Training is diffusers' own discrete-time recipe: timestep n ~ U{0..N-1}, x_n = sqrt(abar_n) x0 +
sqrt(1 - abar_n) eps, loss |eps_theta(x_n, n) - eps|^2 (DSM with the eps weighting on the grid),
AdamW with a cosine learning rate, and an exponential moving average of the weights (the EMA is
what is saved).  The output directory holds ``config.json`` + ``diffusion_pytorch_model.safetensors``
(``save_pretrained``) and ``scheduler_config.json``: what ``sk.load_model(dir, loader="diffusers")``
reads.  On one idle CPU thread 2500 steps take about 4 minutes (651k parameters, 2.6 MB).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from pathlib import Path

import torch

WEIGHTS = Path(__file__).resolve().parents[1] / "plugins" / "samplekit_models" / "weights"
DEFAULT_OUT = WEIGHTS / "digits_unet"

UNET_CONFIG = dict(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(32, 64), layers_per_block=1,
                   down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                   norm_num_groups=8)
SCHEDULER_CONFIG = dict(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear",
                        prediction_type="epsilon", clip_sample=False)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--ema", type=float, default=0.998)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    from diffusers import DDPMScheduler, UNet2DModel
    from samplekit_models.digits import load_digits_split

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x_train, _, _, _ = load_digits_split()
    scheduler = DDPMScheduler(**SCHEDULER_CONFIG)
    abar = scheduler.alphas_cumprod.float()
    net = UNet2DModel(**UNET_CONFIG)
    ema = copy.deepcopy(net).requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / 200) * 0.5 * (1 + math.cos(math.pi * min(i, args.steps) / args.steps)))
    g = torch.Generator().manual_seed(args.seed)
    start, running, log = time.time(), None, []
    for step in range(args.steps):
        idx = torch.randint(0, x_train.shape[0], (args.batch_size,), generator=g)
        x0 = x_train[idx]
        n = torch.randint(0, scheduler.config.num_train_timesteps, (args.batch_size,), generator=g)
        eps = torch.randn(x0.shape, generator=g)
        a = abar[n].reshape(-1, 1, 1, 1)
        xn = a.sqrt() * x0 + (1 - a).sqrt() * eps
        loss = (net(xn, n).sample - eps).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), net.parameters()):
                pe.lerp_(p, 1 - args.ema)
        running = loss.item() if running is None else 0.99 * running + 0.01 * loss.item()
        if step % 100 == 0 or step == args.steps - 1:
            log.append({"step": step, "loss_ema": round(running, 5), "seconds": round(time.time() - start, 1)})
            print(json.dumps(log[-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    ema.save_pretrained(args.out)
    scheduler.save_pretrained(args.out)
    info = {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "ema": args.ema, "seed": args.seed,
            "parameters": sum(p.numel() for p in ema.parameters()), "seconds": round(time.time() - start, 1),
            "final_loss_ema": round(running, 5), "train_images": int(x_train.shape[0])}
    (args.out / "training.json").write_text(json.dumps(info, indent=1) + "\n")
    print(json.dumps(info))


if __name__ == "__main__":
    main()
