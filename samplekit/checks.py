"""Argument checks shared by the public API: integers, seeds, dtypes (one copy each).

Each check names the argument and the fix, and raises before any work is spent.  Integers accept
numpy integers (``np.int64(10)``) and refuse bools, floats and strings.
"""

from __future__ import annotations

import numbers
import operator
from typing import Any, Sequence

from samplekit.errors import ArgumentTypeError, InvalidArgumentError

__all__ = ["as_int", "positive_int", "check_seed", "check_float_dtype", "fresh_seed", "SEED_LIMIT"]

SEED_LIMIT = 2 ** 63  # torch.Generator.manual_seed takes 0 <= seed < 2**64; keep to int64's range


def as_int(value: Any, name: str, minimum: int | None = None, what: str = "an integer") -> int:
    """``value`` as a Python int if it is an integer (int or numpy integer, not bool) >= ``minimum``."""
    try:  # int, numpy integers and 0-d integer tensors have __index__; floats and bools are refused
        if isinstance(value, (bool, str, bytes, float)) or type(value).__name__ == "bool_":
            raise TypeError
        value = operator.index(value)
    except TypeError:
        raise ArgumentTypeError(f"{name}={value!r} must be {what}, not {type(value).__name__}") from None
    value = int(value)
    if minimum is not None and value < minimum:
        raise InvalidArgumentError(f"{name}={value} is below {minimum}: it must be {what}")
    return value


def positive_int(value: Any, name: str, what: str = "a positive integer") -> int:
    """``value`` as an int >= 1, else an error naming ``name``."""
    return as_int(value, name, minimum=1, what=what)


def _one_seed(value: Any, name: str) -> int:
    seed = as_int(value, name, what="an integer seed")
    if not 0 <= seed < SEED_LIMIT:
        raise InvalidArgumentError(f"{name}={seed} is out of range: a seed is an integer in [0, 2**63)")
    return seed


def check_seed(seed: Any, num_samples: int | None = None, name: str = "seed") -> int | list[int] | None:
    """None, one int, or one int per sample (a list/tuple/array/1-d tensor of integers, ``num_samples``
    long).  Floats, bools, strings and out-of-range integers are refused."""
    if seed is None:
        return None
    if isinstance(seed, (str, bytes)):
        raise ArgumentTypeError(f"{name}={seed!r} must be an integer or one integer per sample, not a string")
    if isinstance(seed, bool) or type(seed).__name__ == "bool_":
        raise ArgumentTypeError(f"{name}={seed!r} must be an integer seed, not a bool")
    if getattr(seed, "ndim", None) == 0:  # 0-d numpy array or tensor
        return _one_seed(seed, name)
    if isinstance(seed, numbers.Number):
        return _one_seed(seed, name)
    try:
        items: Sequence = list(seed.tolist() if hasattr(seed, "tolist") else seed)
    except TypeError:
        raise ArgumentTypeError(f"{name}={seed!r} must be an integer or one integer per sample") from None
    seeds = [_one_seed(s, f"{name}[{i}]") for i, s in enumerate(items)]
    if num_samples is not None and len(seeds) != num_samples:
        raise InvalidArgumentError(f"{name} has {len(seeds)} entries for num_samples={num_samples}; "
                                   "pass one int, or exactly one int per sample")
    return seeds


def fresh_seed() -> int:
    """A new random seed from the OS, without touching torch's global generator."""
    import secrets

    return secrets.randbelow(SEED_LIMIT)


def check_float_dtype(dtype: Any, name: str = "dtype"):
    """``dtype`` if it is a floating-point torch dtype (or None), else an error naming the fix."""
    import torch

    if dtype is None:
        return None
    if not isinstance(dtype, torch.dtype):
        raise ArgumentTypeError(f"{name}={dtype!r} must be a torch floating-point dtype, e.g. torch.float32 "
                                "or torch.float64")
    if not dtype.is_floating_point:
        raise InvalidArgumentError(f"{name}={dtype} is not a floating-point dtype; samples are real numbers: use "
                                   "torch.float32 or torch.float64")
    return dtype
