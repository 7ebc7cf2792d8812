"""Which model ``samplekit sample`` and ``samplekit bench`` use: a registered target (``--target``), a shipped
model by name, or a network file read by a model loader (``--model PATH --loader ...``) with
``--parametrization``, ``--sde``, ``--shape`` and ``--trust-code`` passed to the loaders that take them and
refused (not ignored) by the others; then ``--cond`` binds network inputs and ``--class``/``--guidance`` guide
it.  The one place these flags become a model: ``model_options`` declares them, ``ModelFlags.build`` reads them."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

from samplekit.errors import InvalidArgumentError

if TYPE_CHECKING:
    from samplekit.score import ScoreModel

# --flag -> the loader parameters that may receive it
LOADER_PARAMETERS = {
    "parametrization": ("parametrization", "prediction_type"),
    "sde": ("sde",),
    "shape": ("shape",),
    "trust_code": ("trust_code",),
}
DIFFUSERS_PREDICTION = {"eps": "epsilon", "x0": "sample", "v": "v_prediction"}


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    """``C,H,W`` (or ``D``) as a tuple of positive ints."""
    if text is None:
        return None
    parts = [part.strip() for part in text.replace("x", ",").split(",")]
    # every part a size: "2,x" or "3,,32" is refused, not read as a shorter shape
    shape = tuple(int(part) for part in parts) if all(part.isdigit() for part in parts) else ()
    if not shape or any(s < 1 for s in shape):
        raise click.BadParameter(
            f"{text!r} is not a shape: give positive sizes separated by commas, e.g. 3,32,32 or 2", param_hint="--shape"
        )
    return shape


def choose_model(
    target: str,
    model_source: str | None,
    loader: str | None,
    sde_name: str | None,
    parametrization: str | None,
    shape: tuple[int, ...] | None,
    trust_code: bool,
):
    """(ScoreModel, label) for ``samplekit sample``."""
    from samplekit.api import get_sde, get_target
    from samplekit.plugins import get_registry

    given = {
        k: v
        for k, v in (("parametrization", parametrization), ("shape", shape), ("trust_code", trust_code or None))
        if v is not None
    }
    if model_source is None:
        for flag in (*given, *(["loader"] if loader else [])):
            raise click.BadParameter(
                f"--{flag.replace('_', '-')} applies to --model (a network file); a --target "
                "is sampled from its exact score",
                param_hint=f"--{flag.replace('_', '-')}",
            )
        return get_target(target).model(get_sde(sde_name or "vp")), target
    registry = get_registry()
    if not Path(model_source).exists() and loader is None:
        names = {c.name for c in registry.available("target")}
        shipped = registry.create("target", model_source) if model_source in names else None
        fixed = getattr(shipped, "fixed_sde", None)
        if shipped is None or fixed is None:
            raise click.BadParameter(
                f"{model_source!r} is neither a path nor a shipped model's name (shipped: "
                f"{', '.join(sorted(n for n in names if registry.get('target', n).info.get('fixed_sde')))})",
                param_hint="--model",
            )
        for flag in given:
            raise click.BadParameter(
                f"--{flag.replace('_', '-')} does not apply to the shipped model "
                f"{model_source!r}: it was trained with its own settings",
                param_hint="--model",
            )
        _check_same_sde(sde_name, fixed.name, model_source)
        return shipped.model(fixed), model_source
    from samplekit.loading import guess_loader, load_model

    name = loader or guess_loader(model_source)
    factory = registry.get("model_loader", name).factory
    options, refused = _loader_options(factory, given, sde_name)
    if refused:
        flag = refused[0]
        raise click.BadParameter(
            f"--{flag.replace('_', '-')} does not apply to loader {name!r}: its model file "
            "states that itself (drop the option)",
            param_hint=f"--{flag.replace('_', '-')}",
        )
    model = load_model(model_source, loader=name, **options)
    if "sde" not in options:
        _check_same_sde(sde_name, model.sde.name, model_source)
    return model, Path(model_source).name


def _check_same_sde(sde_name: str | None, actual: str, source: str) -> None:
    if sde_name is not None and sde_name != actual:
        raise InvalidArgumentError(
            f"--sde {sde_name} conflicts with model {source!r}, which was trained under the "
            f"{actual!r} SDE; drop --sde (a model samples under its own SDE)"
        )


def _loader_options(factory, given: dict, sde_name: str | None) -> tuple[dict, list[str]]:
    params: Mapping[str, inspect.Parameter]
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    wanted = dict(given)
    if sde_name is not None:
        wanted["sde"] = sde_name
    options, refused = {}, []
    for flag, value in wanted.items():
        target = next((p for p in LOADER_PARAMETERS[flag] if p in params), None)
        if target is None and takes_any:
            target = LOADER_PARAMETERS[flag][0]
        if target is None:
            if flag != "sde":  # a differing --sde is refused after loading, naming the model's SDE
                refused.append(flag)
            continue
        if target == "prediction_type":
            value = DIFFUSERS_PREDICTION.get(value, value)
        if target == "sde":
            from samplekit.api import get_sde

            value = get_sde(value)
        options[target] = value
    return options, refused


PARAMETRIZATION_HELP = "what the network outputs: score, eps, x0, v or flow (loaders torch, diffusers)"


def model_options(command):
    """The click options that name a model, shared by ``samplekit sample`` and ``samplekit bench``:
    --model, --loader, --parametrization, --sde, --shape, --trust-code, --cond, --class, --guidance,
    --null-class (read back with ``ModelFlags.from_options``)."""
    options = [
        click.option(
            "--model",
            "model_source",
            metavar="PATH|NAME",
            help="a network: a path read by a model loader (see --loader), or a shipped model's name "
            "(e.g. digits_unet, ring2d_mlp)",
        ),
        click.option(
            "--loader",
            help="the model loader for --model: torch, denoiser, diffusers, samplekit "
            "(samplekit list model_loader); guessed for samplekit and diffusers directories",
        ),
        click.option("--parametrization", help=PARAMETRIZATION_HELP),
        click.option(
            "--sde", "sde_name", help="a registered SDE (samplekit list sde) [default: vp; a loaded model's own]"
        ),
        click.option(
            "--shape", "shape_text", metavar="C,H,W", help="one sample's shape, for loaders torch and denoiser"
        ),
        click.option(
            "--trust-code",
            is_flag=True,
            help="allow a TorchScript archive (--loader torch/denoiser): it is code, run only files you trust",
        ),
        click.option(
            "--cond",
            "cond_path",
            type=click.Path(dir_okay=False),
            help=".npz of named network inputs bound with model.condition(**arrays) (e.g. class_labels, "
            "encoder_hidden_states); an array with -n rows is per-sample, others are broadcast",
        ),
        click.option(
            "--class",
            "class_label",
            type=int,
            help="draw this class: classifier guidance (a shipped model's classifier) or classifier-free "
            "guidance (a loaded class-conditional network)",
        ),
        click.option(
            "--guidance",
            type=float,
            help="guidance scale w for --class (default 1: the exact conditional if the classifier were exact; "
            "w > 1 sharpens)",
        ),
        click.option(
            "--null-class",
            type=click.IntRange(0),
            help="with --class on a loaded class-conditional network: "
            "its unconditional label [default: the last row of its class-embedding table]",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@dataclass(frozen=True)
class ModelFlags:
    """What ``model_options`` read: the flags that turn into a model (``build``)."""

    source: str | None = None
    loader: str | None = None
    parametrization: str | None = None
    sde_name: str | None = None
    shape_text: str | None = None
    trust_code: bool = False
    cond_path: str | None = None
    class_label: int | None = None
    guidance: float | None = None
    null_class: int | None = None

    NAMES = {
        "model_source": "source",
        "loader": "loader",
        "parametrization": "parametrization",
        "sde_name": "sde_name",
        "shape_text": "shape_text",
        "trust_code": "trust_code",
        "cond_path": "cond_path",
        "class_label": "class_label",
        "guidance": "guidance",
        "null_class": "null_class",
    }

    @classmethod
    def from_options(cls, options: dict) -> ModelFlags:
        """Take (pop) this class's options out of a command's keyword arguments."""
        return cls(**{field: options.pop(name) for name, field in cls.NAMES.items() if name in options})

    def given(self) -> list[str]:
        """The flags given, as the user typed them (--model first)."""
        flags = {
            "--model": self.source,
            "--loader": self.loader,
            "--parametrization": self.parametrization,
            "--sde": self.sde_name,
            "--shape": self.shape_text,
            "--trust-code": self.trust_code or None,
            "--cond": self.cond_path,
            "--class": self.class_label,
            "--guidance": self.guidance,
            "--null-class": self.null_class,
        }
        return [flag for flag, value in flags.items() if value is not None]

    @property
    def conditioned(self) -> bool:
        return self.cond_path is not None or self.class_label is not None

    def build(self, target: str = "ring2d") -> ChosenModel:
        """The model these flags name (a registered ``target`` without --model), its inputs bound (--cond)
        and guided to --class; refused with the flag named when the flags do not fit together."""
        if self.guidance is not None and self.class_label is None:
            raise click.BadParameter("--guidance needs --class (the class to guide towards)", param_hint="--guidance")
        if self.null_class is not None and (self.class_label is None or self.source is None):
            raise click.BadParameter(
                "--null-class applies to --class on a loaded class-conditional --model", param_hint="--null-class"
            )
        model, label = choose_model(
            target,
            self.source,
            self.loader,
            self.sde_name,
            self.parametrization,
            parse_shape(self.shape_text),
            self.trust_code,
        )
        if self.cond_path is not None:
            model = bind_inputs_file(model, self.cond_path)
        extras: dict = {}
        if self.class_label is not None:
            model, extras = self._guide(model, target)
        return ChosenModel(model, label, extras)

    def _guide(self, model, target: str):
        from samplekit.cli.conditioning import prepare, shipped_target

        assert self.class_label is not None  # build() calls this only with --class
        scale = 1.0 if self.guidance is None else self.guidance
        if self.source is not None and shipped_target(self.source) is None:
            from samplekit.cli.guided import guide_loaded  # a loaded conditional network: CFG on that one network

            return guide_loaded(model, self.class_label, scale, self.null_class), {
                "class_label": self.class_label,
                "guidance": scale,
            }
        guided = prepare(model, self.source or target, "", {}, 1, 0, class_label=self.class_label, guidance=scale)
        return guided.model, guided.extras


@dataclass
class ChosenModel:
    """A model built from ``ModelFlags``: the ScoreModel, its label, and what to record with its samples."""

    model: ScoreModel
    label: str
    extras: dict = field(default_factory=dict)


def bind_inputs_file(model, path: str):
    """``model.condition(**arrays)`` with the named arrays of an .npz (--cond)."""
    import torch

    from samplekit.arrays import read_arrays

    arrays = read_arrays(path, what="--cond")
    if not arrays:
        raise click.BadParameter(
            f"{path} holds no arrays; save the network inputs by name, e.g. numpy.savez(path, class_labels=labels)",
            param_hint="--cond",
        )
    return model.condition(**{name: torch.from_numpy(array) for name, array in arrays.items()})
