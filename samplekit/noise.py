"""The one source of randomness a sampler uses: made from ``seed``, injectable, reproducible.

``seed`` is an int (one ``torch.Generator`` for the whole batch) or one int per sample
(one generator per sample, so each sample is the same whatever batch it is drawn in).
"""

from __future__ import annotations

from typing import Sequence

import torch

from samplekit.errors import InvalidArgumentError

Tensor = torch.Tensor


def _generator(seed: int, device) -> torch.Generator:
    g = torch.Generator(device=device if device is not None else "cpu")
    g.manual_seed(int(seed))
    return g


class NoiseSource:
    """Standard normal draws of shape (num_samples, *shape) from seeded generators."""

    def __init__(self, seed: int | Sequence[int] | None, num_samples: int, device=None) -> None:
        self.num_samples = int(num_samples)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        if seed is None:
            seed = int(torch.seed() % (2 ** 63))
        if isinstance(seed, (int,)) and not isinstance(seed, bool):
            self.per_sample = False
            self.seed = int(seed)
            self.generators = [_generator(seed, self.device)]
        else:
            seeds = [int(s) for s in seed]
            if len(seeds) != self.num_samples:
                raise InvalidArgumentError(f"seed has {len(seeds)} entries for num_samples={num_samples}; "
                                 "pass one int, or exactly one int per sample")
            self.per_sample = True
            self.seed = seeds
            self.generators = [_generator(s, self.device) for s in seeds]

    @property
    def generator(self) -> torch.Generator:
        """The single generator (only for an int seed)."""
        if self.per_sample:
            raise InvalidArgumentError("this noise source has one seed per sample; it has no single generator")
        return self.generators[0]

    def randn(self, shape: Sequence[int], dtype: torch.dtype = torch.float32) -> Tensor:
        """N(0, I) of shape (num_samples, *shape); row i from sample i's own generator if per-sample."""
        shape = tuple(shape)
        if not self.per_sample:
            return torch.randn((self.num_samples, *shape), generator=self.generators[0], dtype=dtype,
                               device=self.device)
        return torch.stack([torch.randn(shape, generator=g, dtype=dtype, device=self.device)
                            for g in self.generators])

    def randn_like(self, x: Tensor) -> Tensor:
        if x.shape[0] != self.num_samples:
            raise InvalidArgumentError(f"x has batch {x.shape[0]}, the noise source {self.num_samples}")
        return self.randn(x.shape[1:], dtype=x.dtype)

    def integer_seed(self) -> int:
        """An int seed for libraries that take one (e.g. torchsde's Brownian motion), drawn from this source."""
        if self.per_sample:
            raise InvalidArgumentError("this solver needs one int seed for the whole batch (its Brownian motion is shared); "
                             "pass seed=<int> instead of one seed per sample")
        return int(torch.randint(0, 2 ** 31 - 1, (1,), generator=self.generators[0]).item())
