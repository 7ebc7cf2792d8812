"""The shipped digit classifier (an MLP on the 64 pixels) and the two metrics built on it.

``digits_fd``: the Frechet distance between Gaussians fitted to the classifier's penultimate
features (64-D) of the samples and of the reference (FID's recipe, with a network trained on
these digits instead of Inception):  |mu_x - mu_y|^2 + tr(C_x + C_y - 2 (C_x C_y)^(1/2)).
``digits_class_balance``: the total-variation distance between the predicted class frequencies
of the samples and of the reference (0 = the same balance; a model that drops or repeats digits
scores high).  Samples are clamped to the data range [-1, 1] first, as an image would be.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

WEIGHTS = Path(__file__).resolve().parent / "weights" / "digits_classifier"
Tensor = torch.Tensor


class DigitClassifier(nn.Module):
    """64 pixels -> hidden -> features (penultimate, SiLU) -> 10 logits."""

    def __init__(self, hidden: int = 128, features: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(), nn.Linear(64, hidden), nn.SiLU(), nn.Linear(hidden, features), nn.SiLU()
        )
        self.head = nn.Linear(features, 10)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


_cache: dict = {}


def load_classifier(path: Path = WEIGHTS) -> DigitClassifier:
    """The shipped classifier (cached), float64, eval mode."""
    from samplekit.loading import read_tensors

    key = str(path)
    if key not in _cache:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        net = DigitClassifier(**config["architecture"])
        net.load_state_dict(read_tensors(path / "model.safetensors"))
        _cache[key] = net.double().eval()
    return _cache[key]


SAMPLE_SHAPE = (1, 8, 8)  # what the digits metrics take (declared at registration as ``sample_shape``)


def _images(x: Tensor, argument: str) -> Tensor:
    x = torch.as_tensor(x)
    if x.ndim < 2 or x[0].numel() != 64:
        raise ValueError(
            f"{argument} has shape {tuple(x.shape)}, dimension {x[0].numel() if x.ndim else 0} per "
            "sample; the digits metrics take 8x8 digit images (batch, 1, 8, 8) or (batch, 64): use "
            "them on the digits_unet target"
        )
    x = x.reshape(-1, 64).double()
    if not torch.isfinite(x).all():
        raise ValueError(f"{argument} holds NaN/Inf")
    return x.clamp(-1, 1)


def classify(x: Tensor) -> Tensor:
    with torch.no_grad():
        return load_classifier()(_images(x, "x")).argmax(1)


def frechet_distance(fx: Tensor, fy: Tensor) -> float:
    """|mu_x - mu_y|^2 + tr(C_x + C_y - 2 (C_x^(1/2) C_y C_x^(1/2))^(1/2)) in float64."""
    mx, my = fx.mean(0), fy.mean(0)
    cx, cy = torch.cov(fx.T), torch.cov(fy.T)
    ex, ux = torch.linalg.eigh(cx)
    root_x = ux @ torch.diag(ex.clamp_min(0).sqrt()) @ ux.T
    middle = torch.linalg.eigvalsh(root_x @ cy @ root_x).clamp_min(0).sqrt().sum()
    return float((mx - my).pow(2).sum() + torch.trace(cx) + torch.trace(cy) - 2 * middle)


def digits_fd(samples: Tensor, reference: Tensor) -> float:
    """Frechet distance of the shipped digit classifier's penultimate features (FID on 8x8 digits)."""
    net = load_classifier()
    with torch.no_grad():
        fx, fy = net.features(_images(samples, "samples")), net.features(_images(reference, "reference"))
    return frechet_distance(fx, fy)


def digits_class_balance(samples: Tensor, reference: Tensor) -> float:
    """Total-variation distance between the predicted class frequencies of samples and reference."""
    px = torch.bincount(classify(samples), minlength=10).double()
    py = torch.bincount(classify(reference), minlength=10).double()
    return float(0.5 * (px / px.sum() - py / py.sum()).abs().sum())
