"""The shipped trained models as benchmark targets (same interface as ``samplekit.targets.ExactTarget``).

``ring2d_mlp``: the MLP eps-network trained by DSM on ring2d samples (native format, VP SDE); its
reference samples are exact ring2d samples, so every solver is measured against the true law.
``digits_unet``: the diffusers UNet2DModel trained on the 8x8 digits train split (DiscreteVPSDE of
its DDPM scheduler); reference samples are held-out digits.  The held-out split is halved once:
``reference`` draws from the first half, ``floor_reference`` from the second, with replacement when
more samples are asked for than a half holds (300 images each).
``digits_cond_unet``: the class-conditional UNet (native format, VP SDE; unguided without labels);
``digits_cfg``: the same under classifier-free guidance at w = 2, the labels cycling 0..9 over the
samples and the reference digits drawn class by class to match.
``digits_flow``: the rectified-flow UNet (native format, ``rectified_flow``, parametrisation ``flow``).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import torch

WEIGHTS = Path(__file__).resolve().parent / "weights"
RING2D_DIR = WEIGHTS / "ring2d_mlp"
DIGITS_DIR = WEIGHTS / "digits_unet"
COND_DIR = WEIGHTS / "digits_cond_unet"
FLOW_DIR = WEIGHTS / "digits_flow"


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


class DigitsTarget(ShippedTarget):
    """A shipped digits model: held-out digits as its reference."""

    data = "digits"  # the digits metrics (digits_fd, digits_class_balance) apply to these targets only

    @cached_property
    def _halves(self) -> tuple[torch.Tensor, torch.Tensor]:
        from samplekit_models.digits import load_digits_split

        _, _, x_test, _ = load_digits_split(dtype=torch.float64)
        perm = torch.randperm(x_test.shape[0], generator=torch.Generator().manual_seed(0))
        half = x_test.shape[0] // 2
        return x_test[perm[:half]], x_test[perm[half : 2 * half]]

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

    def held_out(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every held-out digit with its label: float64 (600, 1, 8, 8) and int64 (600,)."""
        from samplekit_models.digits import load_digits_split

        _, _, x_test, y_test = load_digits_split(dtype=torch.float64)
        return x_test, y_test


class DigitsUNetTarget(DigitsTarget):
    def __init__(self) -> None:
        super().__init__("digits_unet", DIGITS_DIR, "diffusers")

    # --- conditional generation (samplekit sample --class / --inpaint) ---------------------------
    num_classes = 10

    def guidance_classifier(self, sde):
        """The noise-conditional digits classifier for guidance: classifier(x, t) -> (B, 10) logits."""
        from samplekit_models.digits_classifier import load_digits_classifier

        return load_digits_classifier(sde)


class DigitsCondUNetTarget(DigitsTarget):
    """The class-conditional digits UNet (labels 0..9, null label 10); unguided it draws every class.

    ``model()`` is the plain network: without ``class_labels`` it is the unconditional model (the null
    label); ``classifier_free(model, y, scale)`` guides towards class(es) ``y`` with one batched call
    per evaluation (``samplekit sample --model digits_cond_unet --class 3 --guidance 2``).
    """

    num_classes = 10
    null_class = 10

    def __init__(self, name: str = "digits_cond_unet") -> None:
        super().__init__(name, COND_DIR, "samplekit")

    def classifier_free(self, model, y, scale: float):
        """s_u + w (s_y - s_u) on the one conditional network: ``model.condition(class_labels=y)`` against
        ``model.condition(class_labels=null)``; ``y`` one label or one per sample."""
        return self._guided(model, y, scale)

    def _guided(self, model, y, scale: float):
        from samplekit.guidance import classifier_free

        y = torch.as_tensor(y)
        if y.is_floating_point() or y.ndim > 1 or bool(((y < 0) | (y >= self.num_classes)).any()):
            raise ValueError(
                f"class labels {y.tolist()}: give integers 0..{self.num_classes - 1} (one, or one per sample)"
            )
        return classifier_free(model.condition(class_labels=y), model.condition(class_labels=self.null_class), scale)


class DigitsCFGTarget(DigitsCondUNetTarget):
    """Benchmark target: the conditional UNet under classifier-free guidance at w = ``scale``, sample i of
    class i mod 10.  ``model()`` binds the labels of ``num_samples`` samples, so a run must draw exactly
    that many (otherwise a clear error names ``class_labels``); ``reference(n)`` draws held-out digits
    with the same labels, class by class, so the metrics compare like with like."""

    scale = 2.0
    num_samples = 200
    classifier_free = None  # type: ignore[assignment]  # already guided: --class applies to digits_cond_unet

    def __init__(self) -> None:
        super().__init__("digits_cfg")

    def labels(self, n: int) -> torch.Tensor:
        return torch.arange(n) % self.num_classes

    def model(self, sde=None):
        return self._guided(super().model(), self.labels(self.num_samples), self.scale)

    @cached_property
    def _labelled_halves(self):
        x, y = self.held_out()
        perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))
        half = x.shape[0] // 2
        return (x[perm[:half]], y[perm[:half]]), (x[perm[half : 2 * half]], y[perm[half : 2 * half]])

    def _draw_matched(self, pool: tuple[torch.Tensor, torch.Tensor], n: int, seed: int) -> torch.Tensor:
        x, y = pool
        labels = self.labels(n)
        out = torch.empty(n, *x.shape[1:], dtype=x.dtype)
        for c in range(self.num_classes):
            rows = torch.nonzero(labels == c).flatten()
            out[rows] = self._draw(x[y == c], rows.numel(), seed + c)
        return out

    def reference(self, n: int, seed: int = 0) -> torch.Tensor:
        """n held-out digits (first half of the held-out split), digit i of class i mod 10."""
        return self._draw_matched(self._labelled_halves[0], n, seed)

    def floor_reference(self, n: int, seed: int = 0) -> torch.Tensor:
        """The same from the other half, for the noise floor."""
        return self._draw_matched(self._labelled_halves[1], n, seed)


class DigitsFlowTarget(DigitsTarget):
    def __init__(self) -> None:
        super().__init__("digits_flow", FLOW_DIR, "samplekit")


TARGETS = {
    "ring2d_mlp": Ring2DMLPTarget,
    "digits_unet": DigitsUNetTarget,
    "digits_cond_unet": DigitsCondUNetTarget,
    "digits_cfg": DigitsCFGTarget,
    "digits_flow": DigitsFlowTarget,
}
