"""Small networks net(x, t) for training score models, by name (the native format's ``architecture``)."""

from __future__ import annotations

import math

import torch
from torch import nn

Tensor = torch.Tensor


class TimeMLP(nn.Module):
    """An MLP on (x, Fourier features of t): x (B, dim), t (B,) -> (B, dim); SiLU, ``depth`` hidden layers."""

    def __init__(self, dim: int, hidden: int = 128, depth: int = 3, time_features: int = 16,
                 max_frequency: float = 64.0) -> None:
        super().__init__()
        if dim < 1 or hidden < 1 or depth < 1 or time_features < 2 or time_features % 2:
            raise ValueError("TimeMLP: dim, hidden, depth must be positive and time_features a positive even number")
        self.dim = dim
        freqs = torch.exp(torch.linspace(0.0, math.log(max_frequency), time_features // 2))
        self.register_buffer("freqs", freqs, persistent=False)
        layers, width = [], dim + time_features
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        layers.append(nn.Linear(width, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).reshape(-1, 1).expand(x.shape[0], 1)
        angles = t * self.freqs.to(x.dtype)
        return self.net(torch.cat([x, angles.sin(), angles.cos()], dim=1))


ARCHITECTURES = {"mlp": TimeMLP}


def build_architecture(name: str, options: dict) -> nn.Module:
    if name not in ARCHITECTURES:
        raise ValueError(f"architecture {name!r} is unknown; the native format knows {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name](**options)
