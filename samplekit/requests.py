"""Checks that a sampling request can be honoured as asked, before any memory or network call is spent.

Each names the argument and the fix: a device this torch cannot use, a callback that is not callable, a
request whose samples or grid would not fit in memory (sized before allocating), ``ts=`` given with a
schedule it would silently replace.  ``network_dtype``: the dtype a network's inputs are cast to.
"""

from __future__ import annotations

import math
import os

import torch

from samplekit.errors import ArgumentTypeError, InvalidArgumentError, ResourceLimitError

MAX_STEPS = 10**7  # a grid longer than this is a typo (and float64 grids of 10**12 points do not fit)


def check_device(device) -> torch.device | None:
    """``device`` as a torch.device this build can run on, or None; refuses 'meta' (holds no data)."""
    if device is None:
        return None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise InvalidArgumentError(f"device={device!r} is not a torch device; pass e.g. 'cpu' or 'cuda:0'") from None
    if dev.type == "meta":
        raise InvalidArgumentError("device='meta' holds no data to sample; pass 'cpu' or a GPU such as 'cuda'")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidArgumentError(
            f"device={device!r}: this torch {torch.__version__} has no usable CUDA device; pass device='cpu'"
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InvalidArgumentError(f"device={device!r}: there are {torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise InvalidArgumentError(f"device={device!r}: MPS is not available here; pass device='cpu'")
    if dev.type not in ("cpu", "cuda", "mps") and not hasattr(torch, dev.type):
        raise InvalidArgumentError(f"device={device!r} is not available in this torch; pass device='cpu'")
    return dev


def check_callback(callback) -> None:
    if callback is not None and not callable(callback):
        raise ArgumentTypeError(
            f"callback={callback!r} is not callable; pass a function callback(info) (info: sk.StepInfo) or None"
        )


def _memory_bytes(device: torch.device) -> int | None:
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def check_size(num_samples: int, shape, dtype: torch.dtype, device, n_steps: int | None) -> None:
    """The samples (x and a few same-sized buffers a step needs) fit in the device's memory, and the grid is
    not absurdly long: checked from the sizes, before allocating anything."""
    if n_steps is not None and n_steps > MAX_STEPS:
        raise ResourceLimitError(
            f"nfe asks for a grid of {n_steps:,} steps (more than {MAX_STEPS:,}); pass a smaller nfe"
        )
    dev = torch.device(device) if device is not None else torch.device("cpu")
    need = num_samples * math.prod(shape) * torch.empty((), dtype=dtype).element_size() * 4
    have = _memory_bytes(dev)
    if have is not None and need > have:
        raise ResourceLimitError(
            f"num_samples={num_samples:,} samples of shape {tuple(shape)} in {dtype} need about "
            f"{need / 2**30:,.1f} GiB on {dev}, more than its {have / 2**30:,.1f} GiB; pass fewer samples, "
            "or batch_size= to draw them a chunk at a time"
        )


def network_dtype(net) -> torch.dtype | None:
    """The floating dtype of a torch network's weights: the module itself, or the module a thin wrapper holds
    as ``.net`` / ``.module`` (a loader's adapter); None for a function, or mixed/no weights."""
    for _ in range(3):
        if isinstance(net, torch.nn.Module):
            break
        net = getattr(net, "net", None) or getattr(net, "module", None)
    if not isinstance(net, torch.nn.Module):
        return None
    for p in net.parameters():
        if p.is_floating_point():
            return p.dtype
    return None


def check_grid_and_schedule(ts, solver_options: dict) -> None:
    """ts= is the grid used as given: a schedule= (or schedule_options=) beside it would be silently dropped."""
    if ts is None:
        return
    given = [k for k in ("schedule", "schedule_options") if solver_options.get(k) is not None]
    if given:
        raise InvalidArgumentError(
            f"ts= and {'/'.join(given)}= were both given; ts is the grid used as given, so the schedule would be "
            "ignored: drop one (build the grid with sk.get_schedule(name)(sde, n_steps, **options) to use both)"
        )
