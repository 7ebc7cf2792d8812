"""scikit-learn's 8x8 digits as images in [-1, 1], split once into a fixed train and held-out set.

The split is stratified by class with a fixed seed, so every user (the shipped UNet and classifier,
their training scripts, the benchmark target, guidance classifiers) sees the same images:

    x_train, y_train, x_test, y_test = load_digits_split()
    x_*: float tensors (n, 1, 8, 8) in [-1, 1] (pixel / 8 - 1);  y_*: int64 labels 0..9
"""

from __future__ import annotations

import torch

HELD_OUT = 600  # images kept out of every training run (60 per class)
SPLIT_SEED = 0
SHAPE = (1, 8, 8)


def to_unit_range(pixels: torch.Tensor) -> torch.Tensor:
    """scikit-learn's digit intensities 0..16 -> [-1, 1]."""
    return pixels / 8.0 - 1.0


def load_digits_split(dtype: torch.dtype = torch.float32, held_out: int = HELD_OUT, seed: int = SPLIT_SEED):
    """(x_train, y_train, x_test, y_test): images (n, 1, 8, 8) in [-1, 1] and labels; the test split is
    ``held_out`` images, stratified by class (the same fixed split for every caller with the defaults)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the digits data needs scikit-learn: pip install 'samplekit[models]'") from exc
    data = load_digits()
    x = to_unit_range(torch.as_tensor(data.images, dtype=torch.float64)).reshape(-1, *SHAPE)
    y = torch.as_tensor(data.target, dtype=torch.int64)
    g = torch.Generator().manual_seed(seed)
    per_class = held_out // 10
    test_idx = []
    for c in range(10):
        idx = torch.nonzero(y == c).flatten()
        test_idx.append(idx[torch.randperm(idx.numel(), generator=g)[:per_class]])
    test = torch.zeros(y.numel(), dtype=torch.bool)
    test[torch.cat(test_idx)] = True
    return x[~test].to(dtype), y[~test], x[test].to(dtype), y[test]
