"""A small noise-conditional classifier of the 8x8 digits, for classifier guidance.

    clf = load_digits_classifier(model.sde)           # clf(x, t) -> (B, 10) logits of p_t(y | x_t)
    guided = sk.guidance.classifier(model, clf, y=7, scale=2.0)

The network sees the noised image in variance-preserving form and the log-SNR:
    x_vp = x_t / sqrt(alpha_t^2 + sigma_t^2),  lambda_t = log(alpha_t / sigma_t),
so one set of weights serves every SDE (VP, discrete VP, VE, EDM) at the same noise level.
Training (``python scripts/train_digits_noisy_classifier.py``): x_vp = a x0 + s eps with
a = sigmoid(lambda)^(1/2), s = sigmoid(-lambda)^(1/2), lambda ~ U[-6, 8], cross-entropy on the
fixed training split of ``digits.load_digits_split``; a few minutes on one CPU thread.  Weights in
safetensors (``weights/digits_noisy_classifier.safetensors``) with ``digits_noisy_classifier.json``
(accuracy per noise level on the held-out split).  Not to be confused with ``weights/digits_classifier/``,
the clean-image classifier of the ``digits_fd`` metric (``classifier.py``).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
# noise-conditional (guidance); weights/digits_classifier/ is the clean-image classifier of the digits_fd metric
DEFAULT_WEIGHTS = HERE / "weights" / "digits_noisy_classifier.safetensors"
LAMBDA_RANGE = (-6.0, 8.0)


class NoiseConditionalClassifier(nn.Module):
    """Conv net on (1, 8, 8) with the log-SNR injected as per-channel scale and shift (FiLM)."""

    freqs: torch.Tensor  # a buffer

    def __init__(self, width: int = 48, n_classes: int = 10, n_freq: int = 8) -> None:
        super().__init__()
        self.register_buffer("freqs", torch.exp(torch.linspace(0.0, math.log(8.0), n_freq)) / 4.0)
        self.embed = nn.Sequential(nn.Linear(2 * n_freq, 64), nn.SiLU(), nn.Linear(64, 64), nn.SiLU())
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.conv3 = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)  # 8x8 -> 4x4
        self.conv4 = nn.Conv2d(2 * width, 2 * width, 3, padding=1)
        self.films = nn.ModuleList([nn.Linear(64, 2 * c) for c in (width, width, 2 * width, 2 * width)])
        self.norms = nn.ModuleList([nn.GroupNorm(8, c) for c in (width, width, 2 * width, 2 * width)])
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * width * 16, 128), nn.SiLU(), nn.Linear(128, n_classes))

    def forward(self, x_vp: torch.Tensor, log_snr: torch.Tensor) -> torch.Tensor:
        angles = log_snr.reshape(-1, 1).to(x_vp.dtype) * self.freqs.to(x_vp.dtype)
        emb = self.embed(torch.cat([angles.sin(), angles.cos()], dim=1))
        h = x_vp
        for conv, film, norm in zip((self.conv1, self.conv2, self.conv3, self.conv4), self.films, self.norms):
            scale, shift = film(emb).chunk(2, dim=1)
            h = torch.nn.functional.silu(norm(conv(h)) * (1 + scale[:, :, None, None]) + shift[:, :, None, None])
        return self.head(h)


class DigitsClassifier:
    """classifier(x, t) -> (B, 10) logits of p_t(y | x_t) under ``sde`` (any SDE; see the module docstring)."""

    def __init__(self, net: NoiseConditionalClassifier, sde) -> None:
        self.net, self.sde = net.eval(), sde

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        alpha, sigma = self.sde.marginal(t)
        alpha, sigma = alpha.to(x.dtype), sigma.to(x.dtype)
        log_snr = torch.log(alpha) - torch.log(sigma)
        norm = (alpha * alpha + sigma * sigma).sqrt().reshape(-1, *([1] * (x.ndim - 1)))
        net_dtype = next(self.net.parameters()).dtype
        return self.net((x / norm).to(net_dtype), log_snr.expand(x.shape[0]).to(net_dtype)).to(x.dtype)


def load_digits_classifier(sde, path: str | Path | None = None) -> DigitsClassifier:
    """The shipped classifier (safetensors) for models on ``sde``."""
    from safetensors.torch import load_file

    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    if not path.exists():
        raise FileNotFoundError(
            f"no classifier weights at {path}; train them with python scripts/train_digits_noisy_classifier.py"
        )
    net = NoiseConditionalClassifier()
    net.load_state_dict(load_file(str(path)))
    return DigitsClassifier(net, sde)
