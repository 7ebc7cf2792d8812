"""A PNG grid of image samples (B, C, H, W) in [-1, 1], written without an imaging library."""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

import torch


def is_image_shape(shape) -> bool:
    """(C, H, W) with C in 1, 3 and H, W >= 2."""
    return len(shape) == 3 and shape[0] in (1, 3) and shape[1] >= 2 and shape[2] >= 2


def grid_array(x: torch.Tensor, ncols: int | None = None, pad: int = 1, scale: int = 4) -> torch.Tensor:
    """uint8 (rows, cols, C) mosaic of the images, each enlarged ``scale`` times, pixel value (x + 1) * 127.5."""
    x = x.detach().double().cpu().clamp(-1, 1)
    b, c, h, w = x.shape
    ncols = ncols or math.ceil(math.sqrt(b))
    nrows = math.ceil(b / ncols)
    x = x.repeat_interleave(scale, 2).repeat_interleave(scale, 3)
    h, w = h * scale, w * scale
    canvas = torch.full((c, nrows * (h + pad) + pad, ncols * (w + pad) + pad), -1.0, dtype=torch.float64)
    for i in range(b):
        r, q = divmod(i, ncols)
        canvas[:, pad + r * (h + pad) : pad + r * (h + pad) + h, pad + q * (w + pad) : pad + q * (w + pad) + w] = x[i]
    return ((canvas + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0)


def write_png(path: str | Path, image: torch.Tensor) -> Path:
    """Write a uint8 (H, W, 1 or 3) array as an 8-bit grey or RGB PNG."""
    h, w, c = image.shape
    raw = b"".join(b"\x00" + bytes(image[r].flatten().tolist()) for r in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 0 if c == 1 else 2, 0, 0, 0)
    path = Path(path)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    )
    return path


def save_image_grid(path: str | Path, x: torch.Tensor, ncols: int | None = None) -> Path:
    """A PNG grid of samples (B, C, H, W) in [-1, 1]."""
    return write_png(path, grid_array(x, ncols))
