"""Retrain the shipped digit classifier (features for ``digits_fd``, labels for ``digits_class_balance``).

    python scripts/train_digits_classifier.py

Trained on the train split of ``load_digits_split()`` (Adam, cross-entropy, light Gaussian pixel
noise as augmentation so generated digits that are slightly off are still read); the held-out
accuracy is written to ``config.json``.  Takes seconds.
"""

from __future__ import annotations

import json
import time

import torch


def main() -> None:
    from safetensors.torch import save_file

    from samplekit_models.classifier import WEIGHTS, DigitClassifier
    from samplekit_models.digits import load_digits_split

    torch.set_num_threads(1)
    torch.manual_seed(0)
    x_tr, y_tr, x_te, y_te = load_digits_split()
    arch = {"hidden": 128, "features": 64}
    net = DigitClassifier(**arch)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3, weight_decay=1e-4)
    g = torch.Generator().manual_seed(0)
    start = time.time()
    for _ in range(3000):
        idx = torch.randint(0, x_tr.shape[0], (128,), generator=g)
        x = x_tr[idx] + 0.1 * torch.randn(x_tr[idx].shape, generator=g)
        loss = torch.nn.functional.cross_entropy(net(x), y_tr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        acc = (net(x_te).argmax(1) == y_te).double().mean().item()
        train_acc = (net(x_tr).argmax(1) == y_tr).double().mean().item()
    WEIGHTS.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(WEIGHTS / "model.safetensors"))
    info = {
        "architecture": arch,
        "held_out_accuracy": round(acc, 4),
        "train_accuracy": round(train_acc, 4),
        "final_loss": round(loss.item(), 4),
        "steps": 3000,
        "seconds": round(time.time() - start, 1),
        "parameters": sum(p.numel() for p in net.parameters()),
    }
    (WEIGHTS / "config.json").write_text(json.dumps(info, indent=1) + "\n")
    print(json.dumps(info))


if __name__ == "__main__":
    main()
