"""The training loop shared by the digits UNet scripts (conditional VP, flow matching).

AdamW with a 200-step warm-up and a cosine learning rate, gradient clipping at 1, and an exponential
moving average of the weights (the EMA is what is shipped), as in ``train_digits_unet.py``.  ``loss_fn(net,
x0, y, generator) -> scalar`` gives the objective; the loop only draws minibatches and logs.
"""

from __future__ import annotations

import copy
import json
import math
import time

import torch

UNET_CONFIG = dict(
    sample_size=8,
    in_channels=1,
    out_channels=1,
    block_out_channels=[32, 64],
    layers_per_block=1,
    down_block_types=["DownBlock2D", "DownBlock2D"],
    up_block_types=["UpBlock2D", "UpBlock2D"],
    norm_num_groups=8,
)


def add_arguments(parser, steps: int) -> None:
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--ema", type=float, default=0.998)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)


def train(net: torch.nn.Module, loss_fn, x_train: torch.Tensor, y_train: torch.Tensor, args, log_file=None):
    """Train ``net`` in place; return (ema copy, info dict with the loss log and seconds)."""
    torch.set_num_threads(args.threads)
    ema = copy.deepcopy(net).requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / 200) * 0.5 * (1 + math.cos(math.pi * min(i, args.steps) / args.steps))
    )
    g = torch.Generator().manual_seed(args.seed)
    start, cpu_start, running, log = time.time(), time.process_time(), None, []
    for step in range(args.steps):
        idx = torch.randint(0, x_train.shape[0], (args.batch_size,), generator=g)
        loss = loss_fn(net, x_train[idx], y_train[idx], g)
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
    info = {
        "steps": args.steps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "ema": args.ema,
        "seed": args.seed,
        "threads": args.threads,
        "parameters": sum(p.numel() for p in ema.parameters()),
        "seconds": round(time.time() - start, 1),
        "cpu_seconds": round(time.process_time() - cpu_start, 1),
        "final_loss_ema": round(running, 5),
        "train_images": int(x_train.shape[0]),
    }
    return ema.eval(), info
