"""The conditioning options of ``samplekit sample``: class guidance, bound network inputs and inpainting.

    samplekit sample --model digits_unet --solver ddim --nfe 40 --class 7 --guidance 2.0
    samplekit sample --model digits_unet --solver ddim --nfe 40 --inpaint top-half -n 64
    samplekit sample --model DIR --mask mask.npy --observation images.npz --conditioning resample --jumps 4

``--class K --guidance W``: classifier guidance s + W grad_x log p_t(K | x) (``sk.guidance.classifier``)
with the model's noise-conditional classifier; a shipped model offers one through its target's
``guidance_classifier(sde)`` (digits_unet does).  Each evaluation costs 2 calls (network +
classifier), so ``--nfe`` buys half as many steps.  ``--mask`` (1 = known pixel; the sample shape,
or (H, W) for every channel) with ``--observation`` (one image of the sample shape for every
sample, or B images (B, *shape) with -n a multiple of B, each completed -n/B times); ``.npy``
or ``.npz`` (the only array, or the one named ``mask`` / ``observation``).  ``--inpaint REGION``:
the shipped model's held-out images with REGION known (``held_out()`` of its target).
``--conditioning``: ``replacement`` (default), ``resample`` (RePaint, ``--jumps`` repeats per
step, within the same ``--nfe``) or ``observed_score`` (a score wrapper; any solver).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

from samplekit.arrays import ArrayChoiceError, read_array

if TYPE_CHECKING:
    import numpy as np
    import torch

    from samplekit.score import ScoreModel
    from samplekit.solver import Solver

METHODS = ("replacement", "resample", "observed_score")
REGIONS = {"top-half": (0, 0), "bottom-half": (0, 1), "left-half": (1, 0), "right-half": (1, 1)}


def conditioning_options(command):
    """The inpainting options of this module, for ``samplekit sample`` (--class/--guidance: ``model_options``)."""
    options = [
        click.option(
            "--mask",
            type=click.Path(exists=True, dir_okay=False),
            help=".npy/.npz known-pixel mask (1 = known) for inpainting, with --observation",
        ),
        click.option(
            "--observation",
            type=click.Path(exists=True, dir_okay=False),
            help=".npy/.npz observed image(s) for inpainting, with --mask",
        ),
        click.option(
            "--inpaint",
            type=click.Choice(list(REGIONS)),
            help="inpaint held-out images of a shipped model with this region known",
        ),
        click.option("--conditioning", type=click.Choice(METHODS), help="inpainting method [replacement]"),
        click.option("--jumps", type=int, help="resample: repeats of every step [4]"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@dataclass
class Conditioned:
    """What to sample: the (possibly wrapped) model, the (possibly wrapped) solver, and what to save."""

    model: ScoreModel
    solver: str | Solver
    solver_options: dict
    extras: dict = field(default_factory=dict)


def prepare(
    model,
    source: str,
    solver: str,
    solver_options: dict,
    num_samples: int,
    seed: int,
    class_label=None,
    guidance=None,
    mask=None,
    observation=None,
    inpaint=None,
    conditioning=None,
    jumps=None,
) -> Conditioned:
    """Apply --class/--guidance and the inpainting options to ``model`` (``source``: --model or --target)."""
    out = Conditioned(model, solver, solver_options)
    if guidance is not None and class_label is None:
        raise click.BadParameter("--guidance needs --class (the class to guide towards)", param_hint="--guidance")
    if class_label is not None:
        _guide(out, source, class_label, 1.0 if guidance is None else guidance)
    if inpaint is not None and (mask is not None or observation is not None):
        raise click.BadParameter("give either --inpaint or --mask/--observation, not both", param_hint="--inpaint")
    if (mask is None) != (observation is None):
        raise click.BadParameter("inpainting needs both --mask and --observation", param_hint="--mask")
    if mask is None and inpaint is None:
        if conditioning is not None or jumps is not None:
            raise click.BadParameter(
                "--conditioning/--jumps apply to inpainting: add --mask and --observation or --inpaint",
                param_hint="--conditioning",
            )
        return out
    shape = tuple(model.shape)
    if inpaint is not None:
        known, ys = _held_out_region(out, source, shape, inpaint, num_samples, seed)
    else:
        known, ys = _mask_from_file(mask, shape), _observation_from_file(observation, shape, num_samples)
    _condition(out, known, ys, conditioning or "replacement", jumps)
    return out


def _guide(out: Conditioned, source: str, class_label: int, scale: float) -> None:
    from samplekit.guidance import classifier

    shipped = shipped_target(source)
    cfg = getattr(shipped, "classifier_free", None)  # a class-conditional network: classifier-free guidance
    make = getattr(shipped, "guidance_classifier", None)
    if make is None and cfg is None:
        raise click.BadParameter(
            f"{source!r} has no noise-conditional classifier, so --class/--guidance cannot "
            "guide it; use a model that ships one (digits_unet)",
            param_hint="--class",
        )
    n_classes = int(shipped.num_classes)
    if not 0 <= class_label < n_classes:
        raise click.BadParameter(
            f"--class {class_label} is out of range: {source} has classes 0..{n_classes - 1}", param_hint="--class"
        )
    if cfg is not None:
        out.model = cfg(out.model, class_label, scale)
    elif make is not None:  # one of the two exists (checked above)
        out.model = classifier(out.model, make(out.model.sde), y=class_label, scale=scale)
    out.extras.update(class_label=class_label, guidance=scale)


def _condition(out: Conditioned, known: torch.Tensor, ys: torch.Tensor, method: str, jumps) -> None:
    from samplekit.conditioning import observed_score, replacement, resample
    from samplekit.conditioning.per_sample import PerSampleInpainting

    if jumps is not None and method != "resample":
        raise click.BadParameter("--jumps applies to --conditioning resample", param_hint="--jumps")
    obs = PerSampleInpainting(known, ys)
    if method == "observed_score":
        out.model = observed_score(out.model, obs)
    elif method == "resample":
        out.solver = resample(out.solver, obs, jumps=4 if jumps is None else jumps, **out.solver_options)
        out.solver_options = {}
    else:
        out.solver = replacement(out.solver, obs, **out.solver_options)
        out.solver_options = {}
    out.extras.update(mask=known.numpy(), observation=ys.float().numpy(), conditioning=method)


def shipped_target(source: str):
    """The registered target object of a shipped model, by name or by its weights directory; else None."""
    from samplekit.plugins import get_registry

    registry = get_registry()
    names = {c.name for c in registry.available("target")}
    if source in names:
        return registry.create("target", source)
    path = Path(source)
    if not path.exists():
        return None
    for c in registry.available("target"):
        if c.info.get("fixed_sde") is None:
            continue
        target = registry.create("target", c.name)
        if getattr(target, "path", None) is not None and Path(target.path).resolve() == path.resolve():
            return target
    return None


def _held_out_region(out: Conditioned, source: str, shape, region: str, n: int, seed: int):
    import torch

    shipped = shipped_target(source)
    if getattr(shipped, "held_out", None) is None:
        raise click.BadParameter(
            f"{source!r} ships no held-out images; give --mask and --observation instead", param_hint="--inpaint"
        )
    images, labels = shipped.held_out()
    g = torch.Generator().manual_seed(seed)
    pick = (
        torch.randperm(images.shape[0], generator=g)[:n]
        if n <= images.shape[0]
        else torch.randint(0, images.shape[0], (n,), generator=g)
    )
    axis, second = REGIONS[region]
    size = shape[1 + axis]
    index = torch.arange(size)
    keep = index >= size // 2 if second else index < size // 2
    known = torch.zeros(shape, dtype=torch.bool)
    if axis == 0:
        known[:, keep, :] = True
    else:
        known[:, :, keep] = True
    out.extras.update(labels=labels[pick].numpy(), original=images[pick].float().numpy())
    return known, images[pick]


def _load_array(path: str, name: str) -> np.ndarray:
    try:
        return read_array(path, name, what=f"--{name}")
    except ArrayChoiceError as exc:
        raise click.BadParameter(
            f"{path} holds arrays {exc.names}; name the one to use {name!r} or save only one", param_hint=f"--{name}"
        ) from None


def _mask_from_file(path: str, shape) -> torch.Tensor:
    import torch

    mask = torch.as_tensor(_load_array(path, "mask"))
    if tuple(mask.shape) == tuple(shape[1:]) and len(shape) == 3:
        mask = mask.expand(shape)
    if tuple(mask.shape) != tuple(shape):
        raise click.BadParameter(
            f"the mask has shape {tuple(mask.shape)} but the model's samples have shape "
            f"{tuple(shape)}; save a mask of shape {tuple(shape)} (or {tuple(shape[1:])})",
            param_hint="--mask",
        )
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise click.BadParameter(
            "the mask must hold 0/1 (or booleans): 1 where the pixel is known", param_hint="--mask"
        )
    if not bool(mask.any()):
        raise click.BadParameter("the mask has no known pixel (all 0); mark known pixels with 1", param_hint="--mask")
    return mask.bool()


def _observation_from_file(path: str, shape, n: int) -> torch.Tensor:
    import torch

    ys = torch.as_tensor(_load_array(path, "observation")).double()
    if tuple(ys.shape) == tuple(shape):
        ys = ys[None]
    if tuple(ys.shape[1:]) != tuple(shape):
        raise click.BadParameter(
            f"the observation has shape {tuple(ys.shape)}; save one image {tuple(shape)} "
            f"or a batch (B, *{tuple(shape)})",
            param_hint="--observation",
        )
    if n % ys.shape[0]:
        raise click.BadParameter(
            f"-n {n} is not a multiple of the {ys.shape[0]} observed images; each image is "
            "completed the same number of times",
            param_hint="--observation",
        )
    return ys.repeat_interleave(n // ys.shape[0], dim=0)
