"""Inpainting with one observation per sample: the same known-pixel mask, a different image for each row.

    obs = PerSampleInpainting(mask, ys)       # mask: the sample shape; ys: (B, *shape), one image per sample
    sk.sample(model, solver=sk.conditioning.replacement("ddim", obs), nfe=40, num_samples=B)

The decoupled coordinates are those of ``Inpainting`` (the known pixels, then the others); only
``ybar`` changes, from (r,) to (B, r), which every method (``observed_law``, ``replace_observed``,
``observed_score``) broadcasts against the batch.  Sample i is conditioned on ``ys[i]``, so the
batch must have exactly B samples (``check_batch``).  Sampling-only: the exact posterior
(``samplekit.posterior``) takes one observation at a time.
"""

from __future__ import annotations

import torch

from samplekit.conditioning.observation import Inpainting
from samplekit.errors import InvalidArgumentError


class PerSampleInpainting(Inpainting):
    """Known pixels ``mask`` (sample shape), observed values ``ys`` (B, *shape): sample i sees ys[i]."""

    def __init__(self, mask, ys, noise_std: float = 0.0) -> None:
        ys = torch.as_tensor(ys, dtype=torch.float64)
        super().__init__(mask, ys[0] if ys.ndim else ys, noise_std)  # validates the mask and one image
        if tuple(ys.shape[1:]) != self.shape:
            raise InvalidArgumentError(f"ys has shape {tuple(ys.shape)}; pass one image per sample, (B, *{self.shape})")
        known = ys.flatten(1)[:, self.mask]
        if not torch.isfinite(known).all():
            raise InvalidArgumentError("ys must be finite at the known pixels")
        self.ybar = known  # (B, r)
        self.singular_values = torch.ones_like(known)

    @property
    def r(self) -> int:
        return self.ybar.shape[1]

    @property
    def batch(self) -> int:
        return self.ybar.shape[0]

    def check_batch(self, num_samples: int, argument: str = "num_samples") -> None:
        if num_samples != self.batch:
            raise InvalidArgumentError(
                f"{argument}={num_samples} but the observation holds {self.batch} images; "
                "sample one completion per observed image (repeat the images for several each)"
            )

    def matrix(self):
        raise NotImplementedError("a per-sample observation has no single matrix A; use Inpainting per image")

    def y_vector(self):
        raise NotImplementedError("a per-sample observation has no single y; use Inpainting per image")
