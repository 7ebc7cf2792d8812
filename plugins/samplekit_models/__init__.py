"""Shipped trained models as benchmark targets, and the digit metrics.

Targets: ``ring2d_mlp`` (MLP eps-network, native format, VP SDE, exact ring2d reference),
``digits_unet`` (diffusers UNet2DModel on 8x8 digits, held-out reference), ``digits_cond_unet`` (the
class-conditional UNet, null label for classifier-free guidance), ``digits_cfg`` (it under CFG, w = 2,
classes in turn) and ``digits_flow`` (rectified flow).  Metrics:
``digits_fd`` (Frechet distance on the shipped classifier's features) and ``digits_class_balance``.
Retrain with the ``scripts/train_*.py`` scripts of the source tree.  Needs diffusers, safetensors,
scikit-learn (``pip install 'samplekit[models]'``); they are imported only when a model or metric is
used, but a missing one is found here (without importing it) and shows in ``samplekit list``.
"""

from __future__ import annotations

from importlib.util import find_spec

from samplekit.hookspecs import Register, hookimpl

OPTIONAL_DEPENDENCIES = ("diffusers", "safetensors", "sklearn")
_missing = [name for name in OPTIONAL_DEPENDENCIES if find_spec(name) is None]
if _missing:
    raise ImportError(f"samplekit_models needs {', '.join(_missing)}: pip install 'samplekit[models]'")


@hookimpl
def samplekit_register_targets(register: Register) -> None:
    from samplekit_models.targets import (
        DigitsCFGTarget,
        DigitsCondUNetTarget,
        DigitsFlowTarget,
        DigitsUNetTarget,
        Ring2DMLPTarget,
    )

    register(
        "ring2d_mlp",
        Ring2DMLPTarget,
        exact=False,
        fixed_sde="vp",
        summary="MLP eps-network trained by DSM on ring2d (shipped; exact ring2d reference).",
    )
    register(
        "digits_unet",
        DigitsUNetTarget,
        exact=False,
        fixed_sde="discrete_vp",
        summary="diffusers UNet2DModel trained on 8x8 digits (shipped; held-out digits reference).",
    )
    register(
        "digits_cond_unet",
        DigitsCondUNetTarget,
        exact=False,
        fixed_sde="vp",
        summary="class-conditional digits UNet with a null label for classifier-free guidance (shipped; "
        "unguided here).",
    )
    register(
        "digits_cfg",
        DigitsCFGTarget,
        exact=False,
        fixed_sde="vp",
        summary="digits_cond_unet under classifier-free guidance, w=2, classes 0..9 in turn (class-matched "
        "held-out reference).",
    )
    register(
        "digits_flow",
        DigitsFlowTarget,
        exact=False,
        fixed_sde="rectified_flow",
        summary="digits UNet trained by rectified-flow matching (flow parametrisation; held-out digits reference).",
    )


@hookimpl
def samplekit_register_metrics(register: Register) -> None:
    from samplekit_models.classifier import SAMPLE_SHAPE, digits_class_balance, digits_fd

    # data="digits": these metrics apply only to the digits targets (``data = "digits"``), not to any 1x8x8 model
    register("digits_fd", digits_fd, lower_is_better=True, label="digits FD", sample_shape=SAMPLE_SHAPE, data="digits")
    register(
        "digits_class_balance",
        digits_class_balance,
        lower_is_better=True,
        label="class TV",
        sample_shape=SAMPLE_SHAPE,
        data="digits",
    )
