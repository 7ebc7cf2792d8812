"""Argument checks shared by the public API: integers, seeds, dtypes (one copy each).

Each check names the argument and the fix, and raises before any work is spent.  Integers accept
numpy integers (``np.int64(10)``) and refuse bools, floats and strings (``InvalidArgumentError``, a
ValueError, as before); a dtype that is not a torch dtype is an ``ArgumentTypeError``.
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Sequence
from typing import Any

from samplekit.errors import ArgumentTypeError, InvalidArgumentError

__all__ = ["SEED_LIMIT", "as_int", "check_float_dtype", "check_seed", "fresh_seed", "positive_int"]

SEED_LIMIT = 2**63  # torch.Generator.manual_seed takes 0 <= seed < 2**64; keep to int64's range


def as_int(
    value: Any,
    name: str,
    minimum: int | None = None,
    what: str = "an integer",
    error: type[Exception] = InvalidArgumentError,
) -> int:
    """``value`` as a Python int if it is an integer (int or numpy integer, not bool) >= ``minimum``;
    else ``error`` (a SamplekitError subclass) naming ``name``."""
    try:  # int, numpy integers and 0-d integer tensors have __index__; floats and bools are refused
        if isinstance(value, (bool, str, bytes, float)) or type(value).__name__ == "bool_":
            raise TypeError
        value = operator.index(value)
    except TypeError:
        raise error(f"{name}={value!r} must be {what}, not {type(value).__name__}") from None
    value = int(value)
    if minimum is not None and value < minimum:
        raise error(f"{name}={value} must be {what}" + ("" if minimum == 1 else f" >= {minimum}"))
    return value


def positive_int(
    value: Any, name: str, what: str = "a positive integer", error: type[Exception] = InvalidArgumentError
) -> int:
    """``value`` as an int >= 1, else ``error`` naming ``name``."""
    return as_int(value, name, minimum=1, what=what, error=error)


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
        raise InvalidArgumentError(f"{name}={seed!r} must be an integer or one integer per sample, not a string")
    if isinstance(seed, bool) or type(seed).__name__ == "bool_":
        raise InvalidArgumentError(f"{name}={seed!r} must be an integer seed, not a bool")
    if getattr(seed, "ndim", None) == 0:  # 0-d numpy array or tensor
        return _one_seed(seed, name)
    if isinstance(seed, numbers.Number):
        return _one_seed(seed, name)
    try:
        items: Sequence = list(seed.tolist() if hasattr(seed, "tolist") else seed)
    except TypeError:
        raise InvalidArgumentError(f"{name}={seed!r} must be an integer or one integer per sample") from None
    seeds = [_one_seed(s, f"{name}[{i}]") for i, s in enumerate(items)]
    if num_samples is not None and len(seeds) != num_samples:
        raise InvalidArgumentError(
            f"{name} has {len(seeds)} entries for num_samples={num_samples}; "
            "pass one int, or exactly one int per sample"
        )
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
        raise ArgumentTypeError(
            f"{name}={dtype!r} must be a torch floating-point dtype, e.g. torch.float32 or torch.float64"
        )
    if not dtype.is_floating_point:
        raise InvalidArgumentError(
            f"{name}={dtype} is not a floating-point dtype; samples are real numbers: use "
            "torch.float32 or torch.float64"
        )
    return dtype


DEFAULT_NUM_SAMPLES = 1000


def check_sample_args(nfe, num_samples, seed, dtype, x_T=None, x_start=None):
    """``sk.sample``'s scalar arguments checked together, before any work: (nfe, num_samples, seed, dtype).

    nfe: None or a positive integer.  num_samples: None (x_T's / x_start's batch, else 1000) or a positive
    integer equal to that batch.  seed: None draws a fresh one (torch's global generator is left alone).
    dtype: None or a floating dtype equal to x_T's / x_start's.  x_T and x_start must be finite."""
    nfe = None if nfe is None else positive_int(nfe, "nfe", "a positive integer number of network evaluations")
    given = {name: x for name, x in (("x_T", x_T), ("x_start", x_start)) if x is not None}
    batch = None
    for name, x in given.items():
        import torch

        if isinstance(x, torch.Tensor) and x.is_floating_point() and x.ndim >= 1:
            if not bool(torch.isfinite(x).all()):
                raise InvalidArgumentError(f"{name} holds NaN/Inf (before any network call); pass finite values")
            batch = int(x.shape[0])
            if dtype is not None and check_float_dtype(dtype) != x.dtype:
                raise InvalidArgumentError(
                    f"dtype={dtype} conflicts with {name}.dtype={x.dtype}; samples take "
                    f"{name}'s dtype: drop dtype=, or pass {name}.to({dtype})"
                )
    if num_samples is None:
        num_samples = batch if batch is not None else DEFAULT_NUM_SAMPLES
    num_samples = positive_int(num_samples, "num_samples")
    if batch is not None and num_samples != batch:
        name = next(iter(given))
        raise InvalidArgumentError(
            f"num_samples={num_samples} conflicts with {name}, which holds {batch} samples; "
            f"drop num_samples (it is {name}'s batch)"
        )
    seed = check_seed(seed, num_samples)
    return nfe, num_samples, fresh_seed() if seed is None else seed, check_float_dtype(dtype)
