"""Small networks net(x, t) for training score models, by name (the native format's ``architecture``).

``mlp``: ``TimeMLP`` on vectors.  ``unet2d``: diffusers' ``UNet2DModel`` as net(x, t, class_labels=None)
(diffusers is imported only when one is built).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

Tensor = torch.Tensor


class TimeMLP(nn.Module):
    """An MLP on (x, Fourier features of t): x (B, dim), t (B,) -> (B, dim); SiLU, ``depth`` hidden layers."""

    def __init__(
        self, dim: int, hidden: int = 128, depth: int = 3, time_features: int = 16, max_frequency: float = 64.0
    ) -> None:
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


class UNet2D(nn.Module):
    """diffusers' ``UNet2DModel`` as net(x, t, class_labels=None) = unet(x, timestep = time_scale * t).sample.

    ``config``: the ``UNet2DModel`` keyword arguments.  A class-conditional net (``num_class_embeds`` in
    ``config``) takes integer ``class_labels`` (a scalar or one per sample) in 0..num_class_embeds - 1;
    with ``null_class`` set, that label is the "no class" of classifier-free guidance (Ho & Salimans
    2022: trained with labels dropped to it) and omitted labels mean it.  The network runs in its own
    dtype; the output comes back in x's.
    """

    def __init__(self, config: dict, time_scale: float = 1000.0, null_class: int | None = None) -> None:
        super().__init__()
        from diffusers import UNet2DModel

        self.unet: Any = UNet2DModel(**config)  # diffusers ships no type information
        self.time_scale = float(time_scale)
        self.num_classes = config.get("num_class_embeds")
        if null_class is not None and not (self.num_classes and 0 <= int(null_class) < self.num_classes):
            raise ValueError(
                f"UNet2D: null_class={null_class} must be a label of the class embedding "
                f"(0..{(self.num_classes or 0) - 1}); set num_class_embeds in config"
            )
        self.null_class = None if null_class is None else int(null_class)

    def labels(self, class_labels, batch: int, device) -> Tensor | None:
        """class_labels as int64 (batch,), the null class when omitted; None for an unconditional net."""
        if self.num_classes is None:
            if class_labels is not None:
                raise TypeError(
                    "class_labels were given to a UNet2D without a class embedding (config has no num_class_embeds)"
                )
            return None
        if class_labels is None:
            if self.null_class is None:
                raise TypeError("this UNet2D is class-conditional: pass class_labels (model.condition(class_labels=y))")
            class_labels = self.null_class
        labels = torch.as_tensor(class_labels, device=device)
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise TypeError(f"class_labels must be integers 0..{self.num_classes - 1}, got dtype {labels.dtype}")
        if labels.ndim == 0 or labels.shape == (1,):
            return labels.reshape(()).expand(batch).long()
        if labels.shape != (batch,):
            raise ValueError(
                f"class_labels has shape {tuple(labels.shape)}; pass one label or one per sample ({batch},)"
            )
        return labels.long()

    def forward(self, x: Tensor, t: Tensor, class_labels=None) -> Tensor:
        dtype = self.unet.dtype
        t = torch.as_tensor(t, device=x.device).reshape(-1).expand(x.shape[0])
        labels = self.labels(class_labels, x.shape[0], x.device)
        out = self.unet(x.to(dtype), (self.time_scale * t).to(dtype), class_labels=labels).sample
        return out.to(x.dtype)


ARCHITECTURES = {"mlp": TimeMLP, "unet2d": UNet2D}


def build_architecture(name: str, options: dict) -> nn.Module:
    if name not in ARCHITECTURES:
        raise ValueError(f"architecture {name!r} is unknown; the native format knows {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name](**options)
