"""Bounds on what a diffusers config may ask for, checked before anything is allocated.

A ``config.json`` is data from outside: channel counts or depths that would need tens of GB are refused
with a clear error instead of an allocation that takes the machine down.  The parameter count is exact:
the module is built on PyTorch's ``meta`` device (shapes only, no memory, a fraction of a second) and
its parameters counted.  Limits are options of ``load_model(..., loader="diffusers")``.
"""

from __future__ import annotations

import math

import torch

from samplekit.errors import CheckpointError, ResourceLimitError

MAX_PARAMS = 2_000_000_000  # SDXL's UNet is 2.6e9 (raise max_params for it), SD 1.5's 0.86e9
MAX_SAMPLE_NUMEL = 2**26  # elements of one sample (64M: a 4 x 4096 x 4096 latent)


def count_params(cls, config: dict, where: str) -> int:
    """The exact parameter count of ``cls.from_config(config)``, built on the meta device."""
    try:
        with torch.device("meta"):
            module = cls.from_config(config)
    except Exception as exc:
        raise CheckpointError(
            f"{where}: diffusers cannot build {cls.__name__} from this config ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:300] if str(exc) else ''}); check the config"
        ) from None
    return sum(p.numel() for p in module.parameters())


def check_params(cls, config: dict, where: str, max_params: float = MAX_PARAMS) -> int:
    """Refuse a config whose module would hold more than ``max_params`` parameters."""
    n = count_params(cls, config, where)
    if n > max_params:
        raise ResourceLimitError(
            f"{where}: this {cls.__name__} config asks for {n:,} parameters ({4 * n / 2**30:.1f} GiB "
            f"in float32), above max_params={max_params:,.0f}; if the model is really that large, "
            "raise the limit: load_model(..., max_params=N)"
        )
    return n


def check_sample_numel(shape: tuple[int, ...], where: str, max_sample_numel: float = MAX_SAMPLE_NUMEL) -> None:
    """Refuse a sample shape (from a config's sample_size and channels) too large to sample."""
    n = math.prod(shape)
    if n > max_sample_numel:
        raise ResourceLimitError(
            f"{where}: one sample of shape {shape} holds {n:,} elements, above max_sample_numel="
            f"{max_sample_numel:,.0f}; pass shape= explicitly, or raise the limit with "
            "load_model(..., max_sample_numel=N)"
        )
