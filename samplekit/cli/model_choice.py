"""Which model ``samplekit sample`` draws from: a registered target (``--target``), a shipped model by name,
or a network file read by a model loader (``--model PATH --loader ...``) with ``--parametrization``,
``--sde``, ``--shape`` and ``--trust-code`` passed to the loaders that take them and refused (not ignored)
by the others."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path

import click

from samplekit.errors import InvalidArgumentError

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
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        shape = ()
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
