"""The shipped trained models as benchmark targets (same interface as ``samplekit.targets.ExactTarget``).

``ring2d_mlp``: the MLP eps-network trained by DSM on ring2d samples (native format, VP SDE); its
reference samples are exact ring2d samples, so every solver is measured against the true law.
``digits_unet``: the diffusers UNet2DModel trained on the 8x8 digits train split (DiscreteVPSDE of
its DDPM scheduler); reference samples are held-out digits.  The held-out split is halved once:
``reference`` draws from the first half, ``floor_reference`` from the second, with replacement when
more samples are asked for than a half holds (300 images each).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import torch

WEIGHTS = Path(__file__).resolve().parent / "weights"
RING2D_DIR = WEIGHTS / "ring2d_mlp"
DIGITS_DIR = WEIGHTS / "digits_unet"


class ShippedTarget:
    """A trained model with its fixed SDE and reference data; not exact (``exact = False``)."""

    exact = False
    log_prob = None

    def __init__(self, name: str, path: Path, loader: str) -> None:
        self.name, self.path, self.loader = name, path, loader

    @cached_property
    def _loaded(self):
        from samplekit.loading import load_model

        return load_model(self.path, loader=self.loader)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._loaded.shape

    @property
    def fixed_sde(self):
        """The SDE the network was trained with (the target runs with it only)."""
        return self._loaded.sde

    def model(self, sde=None):
        """A fresh ScoreModel of the shipped network (``sde`` is ignored: the trained one is used)."""
        from samplekit.loading import load_model

        return load_model(self.path, loader=self.loader)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {str(self.path)!r})"


class Ring2DMLPTarget(ShippedTarget):
    def __init__(self) -> None:
        super().__init__("ring2d_mlp", RING2D_DIR, "samplekit")

    def reference(self, n: int, seed: int = 0) -> torch.Tensor:
        from samplekit.targets import ring2d

        return ring2d().sample(n, generator=torch.Generator().manual_seed(seed))


class DigitsUNetTarget(ShippedTarget):
    def __init__(self) -> None:
        super().__init__("digits_unet", DIGITS_DIR, "diffusers")

    @cached_property
    def _halves(self) -> tuple[torch.Tensor, torch.Tensor]:
        from samplekit_models.digits import load_digits_split

        _, _, x_test, _ = load_digits_split(dtype=torch.float64)
        perm = torch.randperm(x_test.shape[0], generator=torch.Generator().manual_seed(0))
        half = x_test.shape[0] // 2
        return x_test[perm[:half]], x_test[perm[half:2 * half]]

    def _draw(self, pool: torch.Tensor, n: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        if n <= pool.shape[0]:
            return pool[torch.randperm(pool.shape[0], generator=g)[:n]]
        return pool[torch.randint(0, pool.shape[0], (n,), generator=g)]

    def reference(self, n: int, seed: int = 0) -> torch.Tensor:
        """n held-out digits (first half of the held-out split), float64 (n, 1, 8, 8)."""
        return self._draw(self._halves[0], n, seed)

    def floor_reference(self, n: int, seed: int = 0) -> torch.Tensor:
        """n held-out digits from the other half, for the noise floor."""
        return self._draw(self._halves[1], n, seed)

    # --- conditional generation (samplekit sample --class / --inpaint) ---------------------------
    num_classes = 10

    def guidance_classifier(self, sde):
        """The noise-conditional digits classifier for guidance: classifier(x, t) -> (B, 10) logits."""
        from samplekit_models.digits_classifier import load_digits_classifier

        return load_digits_classifier(sde)

    def held_out(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every held-out digit with its label: float64 (600, 1, 8, 8) and int64 (600,)."""
        from samplekit_models.digits import load_digits_split

        _, _, x_test, y_test = load_digits_split(dtype=torch.float64)
        return x_test, y_test


TARGETS = {"ring2d_mlp": Ring2DMLPTarget, "digits_unet": DigitsUNetTarget}
