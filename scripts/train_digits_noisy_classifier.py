"""Retrain the noise-conditional digits classifier used for classifier guidance.

    python scripts/train_digits_noisy_classifier.py [--steps 4000] [--out FILE]

x_vp = a x0 + s eps with a = sigmoid(lambda)^(1/2), s = sigmoid(-lambda)^(1/2), lambda ~ U[-6, 8],
cross-entropy on the fixed training split of ``samplekit_models.digits.load_digits_split``; AdamW with a
one-cycle learning rate.  Writes the weights (safetensors) and a ``.json`` beside them with the held-out
accuracy per noise level.  A few minutes on one CPU thread.  The network and its loader live in
``plugins/samplekit_models/digits_classifier.py``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch import nn

from samplekit_models.digits_classifier import DEFAULT_WEIGHTS, LAMBDA_RANGE, NoiseConditionalClassifier


def _noised(x0, log_snr, eps):
    a = torch.sigmoid(log_snr).sqrt().reshape(-1, 1, 1, 1)
    s = torch.sigmoid(-log_snr).sqrt().reshape(-1, 1, 1, 1)
    return a * x0 + s * eps


def evaluate(net, x, y, levels=(-4.0, -2.0, 0.0, 2.0, 4.0, 6.0), seed=1) -> dict:
    g = torch.Generator().manual_seed(seed)
    out = {}
    with torch.no_grad():
        for lam in levels:
            ls = torch.full((x.shape[0],), lam)
            pred = net(_noised(x, ls, torch.randn(x.shape, generator=g)), ls).argmax(1)
            out[f"{lam:g}"] = round(float((pred == y).float().mean()), 4)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="train the noise-conditional digits classifier")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS)
    args = parser.parse_args(argv)

    from safetensors.torch import save_file

    from samplekit_models.digits import load_digits_split

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x_train, y_train, x_test, y_test = load_digits_split()
    net = NoiseConditionalClassifier()
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps)
    g = torch.Generator().manual_seed(args.seed)
    start, running = time.time(), None
    lo, hi = LAMBDA_RANGE
    for step in range(args.steps):
        idx = torch.randint(0, x_train.shape[0], (args.batch_size,), generator=g)
        log_snr = lo + (hi - lo) * torch.rand(args.batch_size, generator=g)
        xt = _noised(x_train[idx], log_snr, torch.randn(x_train[idx].shape, generator=g))
        loss = nn.functional.cross_entropy(net(xt, log_snr), y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 200 == 0 or step == args.steps - 1:
            print(
                json.dumps({"step": step, "loss_ema": round(running, 4), "seconds": round(time.time() - start, 1)}),
                flush=True,
            )
    net.eval()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(args.out))
    info = {
        "steps": args.steps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "parameters": sum(p.numel() for p in net.parameters()),
        "seconds": round(time.time() - start, 1),
        "final_loss_ema": round(running, 4),
        "lambda_range": list(LAMBDA_RANGE),
        "held_out_accuracy_by_log_snr": evaluate(net, x_test, y_test),
    }
    args.out.with_suffix(".json").write_text(json.dumps(info, indent=1) + "\n")
    print(json.dumps(info))


if __name__ == "__main__":
    main()
