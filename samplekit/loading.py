"""``sk.load_model(source, loader=...)``: external networks as ScoreModels, through loader plugins.

A model loader (registry kind ``model_loader``) is ``fn(source, **options) -> ScoreModel``; the
built-in ones (plugin ``samplekit_loaders``) are ``diffusers``, ``denoiser``, ``torch`` and
``samplekit``.  Checkpoints are read with safetensors or ``torch.load(weights_only=True)``: nothing
here unpickles arbitrary objects, and a checkpoint that would need it is refused (``UnsafeCheckpointError``).

The native format (``loader="samplekit"``) is a directory with ``model.safetensors`` and
``samplekit.json``: {"format": "samplekit", "version": 1, "architecture": {"name", "options"},
"parametrization", "sde": {"name", "params"}, "shape"}.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from samplekit.errors import (  # noqa: F401
    ArgumentTypeError,
    InvalidArgumentError,
    SamplekitError,
    UnsafeCheckpointError,  # UnsafeCheckpointError re-exported
)
from samplekit.score import ScoreModel, _check_parametrization
from samplekit.sde import SDE

NATIVE_CONFIG = "samplekit.json"
NATIVE_WEIGHTS = "model.safetensors"


def load_model(source, loader: str | None = None, **options) -> ScoreModel:
    """A ScoreModel from ``source`` (a path or an object) with a registered model loader.

    ``loader=None`` guesses from the source: a directory with ``samplekit.json`` -> ``samplekit``;
    a directory or object from diffusers -> ``diffusers``; otherwise pass ``loader=`` explicitly
    (see ``samplekit list model_loader``).  ``options`` go to the loader.
    """
    from samplekit.errors import loading_errors
    from samplekit.plugins import get_registry

    name = loader or guess_loader(source)
    factory = get_registry().get("model_loader", name).factory
    check_loader_options(factory, name, options)
    what = f"{str(source)!r} with loader {name!r}" if isinstance(source, (str, Path)) else f"a {type(source).__name__}"
    try:
        with loading_errors(what):
            model = factory(source, **options)
    except ValueError as exc:  # a loader plugin's own "bad value" is the user's error too
        if isinstance(exc, SamplekitError):
            raise
        raise InvalidArgumentError(f"model loader {name!r}: {exc}") from exc
    if not isinstance(model, ScoreModel):
        raise ArgumentTypeError(f"model loader {name!r} returned {type(model).__name__}, not a samplekit ScoreModel")
    return model


def check_loader_options(factory, name: str, options: dict) -> None:
    """Refuse an option the loader does not take, listing those it does (before any file is read)."""
    from samplekit.options import check_arguments

    check_arguments(
        factory,
        f"model loader {name!r}",
        options,
        skip=1,
        required=True,
        phrases=("takes no option", "it takes"),
        needs_hint=" (e.g. parametrization='eps', shape=(2,))",
    )


def guess_loader(source) -> str:
    if isinstance(source, (str, Path)):
        path = Path(source)
        if (path / NATIVE_CONFIG).is_file() or path.name == NATIVE_CONFIG:
            return "samplekit"
        if path.is_dir() and any((path / f).is_file() for f in ("config.json", "model_index.json", "unet/config.json")):
            return "diffusers"
    elif type(source).__module__.startswith("diffusers"):
        return "diffusers"
    raise InvalidArgumentError(
        f"cannot tell which loader reads {source!r}; pass loader= one of 'diffusers', 'denoiser', "
        "'torch', 'samplekit' (samplekit list model_loader)"
    )


def input_grad_only(x: torch.Tensor):
    """Autograd for a wrapped network only when its input asks for it: sampling builds no graph (as under
    ``no_grad``), while ``log_likelihood`` (x.requires_grad) still differentiates through the network."""
    return torch.set_grad_enabled(torch.is_grad_enabled() and x.requires_grad)


# --- safe readers ------------------------------------------------------------------------------
def read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """A flat dict of tensors from a .safetensors file, or from a torch file with weights_only=True.

    A file that needs an arbitrary unpickle (a pickled module or custom class) is refused with
    ``UnsafeCheckpointError``; nothing in it is executed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses every global outside torch's allow-list
        raise UnsafeCheckpointError(
            f"checkpoint {str(path)!r} is not a plain tensor file: loading it would unpickle arbitrary objects "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}). samplekit never does that; re-save "
            "the weights as safetensors (safetensors.torch.save_file(model.state_dict(), 'model.safetensors')) "
            "or as a state dict of tensors"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UnsafeCheckpointError(
            f"checkpoint {str(path)!r} does not hold a dict of tensors (a state dict); save model.state_dict() instead"
        )
    return state


# --- the native format -------------------------------------------------------------------------
def sde_config(sde: SDE) -> dict:
    return {"name": sde.name, "params": dict(sde.params())}


def save_model(
    path: str | Path,
    net: torch.nn.Module,
    architecture: str,
    architecture_options: dict,
    parametrization: str,
    sde: SDE,
    shape,
    extra: dict | None = None,
) -> Path:
    """Write ``net`` in the native format (``model.safetensors`` + ``samplekit.json``) to directory ``path``."""
    from safetensors.torch import save_file

    _check_parametrization(parametrization)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}
    save_file(state, str(path / NATIVE_WEIGHTS))
    config = {
        "format": "samplekit",
        "version": 1,
        "architecture": {"name": architecture, "options": architecture_options},
        "parametrization": parametrization,
        "sde": sde_config(sde),
        "shape": list(shape),
        **(extra or {}),
    }
    (path / NATIVE_CONFIG).write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    return path


def read_native_config(path: str | Path) -> tuple[Path, dict]:
    """(directory, config) of a native-format model given its directory or its ``samplekit.json``."""
    path = Path(path)
    directory = path.parent if path.name == NATIVE_CONFIG else path
    cfg_path = directory / NATIVE_CONFIG
    if not cfg_path.is_file():
        raise FileNotFoundError(
            f"{str(directory)!r} has no {NATIVE_CONFIG}; a samplekit model directory holds "
            f"{NATIVE_CONFIG} and {NATIVE_WEIGHTS} (written by samplekit.loading.save_model)"
        )
    config = json.loads(cfg_path.read_text(encoding="utf-8"))
    if config.get("format") != "samplekit":
        raise InvalidArgumentError(
            f"{str(cfg_path)!r} is not a samplekit model config (format={config.get('format')!r})"
        )
    for key in ("architecture", "parametrization", "sde", "shape"):
        if key not in config:
            raise InvalidArgumentError(f"{str(cfg_path)!r} lacks {key!r}; see samplekit.loading for the format")
    return directory, config
