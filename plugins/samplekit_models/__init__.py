"""Shipped trained models as benchmark targets, and the digit metrics.

Targets: ``ring2d_mlp`` (MLP eps-network, native format, VP SDE, exact ring2d reference) and
``digits_unet`` (diffusers UNet2DModel on 8x8 digits, held-out reference).  Metrics:
``digits_fd`` (Frechet distance on the shipped classifier's features) and ``digits_class_balance``.
Retrain with the ``train_*.py`` scripts beside this file.  Needs diffusers, safetensors, scikit-learn
(``pip install 'samplekit[models]'``).
"""

from __future__ import annotations

import diffusers  # noqa: F401  (a missing dependency shows in `samplekit list`, not later)
import safetensors  # noqa: F401
import sklearn  # noqa: F401

from samplekit.hookspecs import hookimpl


@hookimpl
def samplekit_register_targets(register):
    from samplekit_models.targets import DigitsUNetTarget, Ring2DMLPTarget

    register("ring2d_mlp", Ring2DMLPTarget, exact=False, fixed_sde="vp",
             summary="MLP eps-network trained by DSM on ring2d (shipped; exact ring2d reference).")
    register("digits_unet", DigitsUNetTarget, exact=False, fixed_sde="discrete_vp",
             summary="diffusers UNet2DModel trained on 8x8 digits (shipped; held-out digits reference).")


@hookimpl
def samplekit_register_metrics(register):
    from samplekit_models.classifier import SAMPLE_SHAPE, digits_class_balance, digits_fd

    # sample_shape: these metrics apply only to targets of 8x8 digit images (others get no value)
    register("digits_fd", digits_fd, lower_is_better=True, label="digits FD", sample_shape=SAMPLE_SHAPE)
    register("digits_class_balance", digits_class_balance, lower_is_better=True, label="class TV",
             sample_shape=SAMPLE_SHAPE)
