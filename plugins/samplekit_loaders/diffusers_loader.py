"""The ``diffusers`` loader: a diffusers model (e.g. ``UNet2DModel``) with its scheduler config.

The scheduler's ``alphas_cumprod`` become a ``DiscreteVPSDE`` (timestep n <-> t = (n + 1) / N, see
``samplekit.discrete``); the network is called as ``net(x, timestep=N t - 1)`` (fractional between
grid points) and its ``prediction_type`` maps to samplekit's parametrisation:
``epsilon`` -> eps, ``sample`` -> x0, ``v_prediction`` -> v (v = alpha eps - sigma x0).

Sources: a directory written by ``save_pretrained`` (``config.json`` + weights, with
``scheduler_config.json`` beside it, in ``scheduler/`` or in ``../scheduler/``; a pipeline directory
with ``unet/`` and ``scheduler/`` works too), or a model object plus ``scheduler=`` (a diffusers
scheduler, its config dict, or a path).  Weights load from safetensors; a ``.bin`` is read with
``torch.load(weights_only=True)``, never a bare unpickle.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from samplekit.discrete import DiscreteVPSDE
from samplekit.loading import input_grad_only, read_tensors
from samplekit.score import ScoreModel

PREDICTION_TYPES = {"epsilon": "eps", "sample": "x0", "v_prediction": "v"}
SCHEDULER_FILE = "scheduler_config.json"


class DiffusersNet(torch.nn.Module):
    """net(x, t) = module(x, timestep = N t - 1) in the module's dtype, output in x's dtype."""

    def __init__(self, module, sde: DiscreteVPSDE) -> None:
        super().__init__()
        self.module, self.sde = module, sde
        params = list(module.parameters()) if isinstance(module, torch.nn.Module) else []
        self.dtype = params[0].dtype if params else None

    def forward(self, x, t):
        dtype = self.dtype or x.dtype
        timestep = self.sde.timestep(t).to(dtype=dtype, device=x.device)
        with input_grad_only(x):
            out = self.module(x.to(dtype), timestep)
        out = getattr(out, "sample", out)
        if isinstance(out, tuple):
            out = out[0]
        return out.to(x.dtype)


def alphas_cumprod_of(scheduler) -> tuple[torch.Tensor, str]:
    """(alphas_cumprod, prediction_type) of a diffusers scheduler, its config dict, or a config path."""
    from diffusers import DDPMScheduler

    if isinstance(scheduler, (str, Path)):
        path = Path(scheduler)
        path = path / SCHEDULER_FILE if path.is_dir() else path
        scheduler = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(scheduler, dict):
        config = {k: v for k, v in scheduler.items() if not k.startswith("_")}
        scheduler = DDPMScheduler.from_config(config)
    abar = getattr(scheduler, "alphas_cumprod", None)
    if abar is None:
        raise ValueError(f"scheduler={scheduler!r} has no alphas_cumprod; pass a DDPM-family diffusers scheduler "
                         "(DDPM, DDIM, Euler, DPM-Solver...) or its config")
    abar = torch.as_tensor(abar, dtype=torch.float64).clone()
    abar[-1] = abar[-1].clamp_min(2.0 ** -24)  # zero-terminal-SNR schedules: the same floor diffusers uses
    return abar, getattr(scheduler, "config", {}).get("prediction_type", "epsilon")


def find_scheduler(directory: Path) -> Path:
    for candidate in (directory / SCHEDULER_FILE, directory / "scheduler" / SCHEDULER_FILE,
                      directory.parent / "scheduler" / SCHEDULER_FILE):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no {SCHEDULER_FILE} in {str(directory)!r}, its scheduler/ or ../scheduler/; save the "
                            "scheduler with scheduler.save_pretrained(dir) or pass scheduler=")


def load_module_dir(directory: Path):
    """A diffusers ModelMixin from a save_pretrained directory (safetensors, or weights-only .bin)."""
    import diffusers

    if not (directory / "config.json").is_file() and (directory / "unet" / "config.json").is_file():
        directory = directory / "unet"
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{str(directory)!r} has no config.json; pass a directory written by "
                                "model.save_pretrained(dir)")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    cls = getattr(diffusers, str(config.get("_class_name", "")), None)
    if not (isinstance(cls, type) and issubclass(cls, diffusers.ModelMixin)):
        raise ValueError(f"{str(config_path)!r} names _class_name={config.get('_class_name')!r}, not a diffusers "
                         "model class; pass the model object instead (loader='diffusers', scheduler=...)")
    weights = sorted(directory.glob("*.safetensors")) or sorted(directory.glob("*.bin"))
    if not weights:
        raise FileNotFoundError(f"{str(directory)!r} holds no .safetensors (or .bin) weights")
    model = cls.from_config(cls.load_config(str(directory)))
    state = {}
    for file in weights:
        state.update(read_tensors(file))
    model.load_state_dict(state)
    return model.eval(), directory


def shape_of(module, shape) -> tuple[int, ...]:
    if shape is not None:
        return tuple(shape)
    config = getattr(module, "config", {})
    size, channels = config.get("sample_size"), config.get("in_channels")
    if size is None or channels is None:
        raise ValueError("cannot read the sample shape from the model's config; pass shape=(C, H, W)")
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    return (int(channels), int(h), int(w))


def load_diffusers(source, scheduler=None, prediction_type: str | None = None, shape=None,
                   name: str | None = None) -> ScoreModel:
    """A diffusers model (directory or object) + its scheduler config as a ScoreModel on a DiscreteVPSDE."""
    if isinstance(source, (str, Path)):
        module, directory = load_module_dir(Path(source))
        scheduler = scheduler if scheduler is not None else find_scheduler(directory)
        name = name or Path(source).name
    else:
        module = source
        if scheduler is None:
            raise ValueError("loading a diffusers model object needs its scheduler: pass scheduler= (a diffusers "
                             "scheduler, its config dict or a scheduler_config.json path)")
        name = name or type(source).__name__
    abar, scheduler_prediction = alphas_cumprod_of(scheduler)
    prediction_type = prediction_type or scheduler_prediction
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"prediction_type={prediction_type!r} is unknown; use one of {', '.join(PREDICTION_TYPES)}")
    sde = DiscreteVPSDE(abar)
    if isinstance(module, torch.nn.Module):
        module.eval()
    return ScoreModel(DiffusersNet(module, sde), sde, shape_of(module, shape), PREDICTION_TYPES[prediction_type],
                      name=name)
