"""The ``diffusers`` loader: a diffusers denoiser with its scheduler config (and a pipeline's VAE) as a ScoreModel.

    model = sk.load_model("sd-pipeline-dir")                # model_index.json: unet/ or transformer/,
                                                            # scheduler/, vae/ -> latent sampling + decoder
    cond = model.condition(encoder_hidden_states=emb)       # inputs under the network's own names
    guided = sk.guidance.classifier_free(cond, model.condition(encoder_hidden_states=neg), scale=7.5)
    res = sk.sample(guided, "dpmpp_2m", nfe=40, num_samples=4);  res.decoded   # images

The scheduler config gives the process (``diffusers_process``): DDPM-family schedulers a ``DiscreteVPSDE``
with eps / x0 / v from ``prediction_type``; ``FlowMatchEulerDiscreteScheduler`` a ``rectified_flow`` model
in the ``flow`` parametrisation, its ``shift`` kept in ``model.schedule_options``.  The network adapter
(``diffusers_net``) maps t to the network's timestep; a pipeline's VAE becomes ``model.decoder``
(``diffusers_vae``); ``diffusers_grid.scheduler_grid`` turns a pipeline's own grid into ``ts=``.

Sources: a ``save_pretrained`` directory of a model (``config.json`` + weights, with ``scheduler_config.json``
beside it, in ``scheduler/`` or ``../scheduler/``), of a pipeline (``model_index.json``, or ``unet/`` +
``scheduler/``), a model object with ``scheduler=``, or a pipeline object.  Weights load from safetensors; a
``.bin`` is read with ``torch.load(weights_only=True)``, never a bare unpickle.  Configs are bounded before
anything is built (``diffusers_limits``: ``max_params``, ``max_train_timesteps``, ``max_sample_numel``).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from samplekit.errors import CheckpointError, InputFileError, InvalidArgumentError, loading_errors
from samplekit.loading import read_tensors
from samplekit.score import ScoreModel
from samplekit_loaders.diffusers_limits import MAX_PARAMS, MAX_SAMPLE_NUMEL, check_params, check_sample_numel
from samplekit_loaders.diffusers_net import DiffusersNet
from samplekit_loaders.diffusers_process import MAX_TRAIN_TIMESTEPS, PREDICTION_TYPES, SCHEDULER_FILE, process_of  # noqa: F401
from samplekit_loaders.diffusers_vae import LatentDecoder

DENOISERS = ("unet", "transformer")  # a pipeline's denoiser component, in this order


def find_scheduler(directory: Path) -> Path:
    for candidate in (
        directory / SCHEDULER_FILE,
        directory / "scheduler" / SCHEDULER_FILE,
        directory.parent / "scheduler" / SCHEDULER_FILE,
    ):
        if candidate.is_file():
            return candidate
    raise InputFileError(
        f"no {SCHEDULER_FILE} in {str(directory)!r}, its scheduler/ or ../scheduler/; save the "
        "scheduler with scheduler.save_pretrained(dir) or pass scheduler="
    )


def load_module_dir(directory: Path, max_params: float = MAX_PARAMS):
    """A diffusers ModelMixin from a save_pretrained directory (safetensors, or weights-only .bin); the
    config's parameter count is checked against ``max_params`` before the module is built."""
    import diffusers

    config_path = directory / "config.json"
    if not config_path.is_file():
        raise InputFileError(
            f"{str(directory)!r} has no config.json; pass a directory written by model.save_pretrained(dir)"
        )
    config = json.loads(config_path.read_text(encoding="utf-8"))
    cls = getattr(diffusers, str(config.get("_class_name", "")), None)
    if not (isinstance(cls, type) and issubclass(cls, diffusers.ModelMixin)):
        raise CheckpointError(
            f"{str(config_path)!r} names _class_name={config.get('_class_name')!r}, not a diffusers "
            "model class; pass the model object instead (loader='diffusers', scheduler=...)"
        )
    weights = sorted(directory.glob("*.safetensors")) or sorted(directory.glob("*.bin"))
    if not weights:
        raise InputFileError(f"{str(directory)!r} holds no .safetensors (or .bin) weights")
    with loading_errors(f"the diffusers model in {str(directory)!r}"):
        init_config = cls.load_config(str(directory))
        check_params(cls, init_config, str(config_path), max_params)
        state = {}
        for file in weights:
            state.update(read_tensors(file))
        model = cls.from_config(init_config)
        model.load_state_dict(state)
    return model.eval()


def pipeline_parts(directory: Path) -> dict[str, Path]:
    """The component directories of a pipeline directory: denoiser, scheduler and (if any) vae."""
    index = directory / "model_index.json"
    listed = None
    if index.is_file():
        entries = json.loads(index.read_text(encoding="utf-8"))
        listed = {k for k, v in entries.items() if isinstance(v, list) and v and v[0] is not None}
    parts = {}
    for name in DENOISERS:
        if (listed is None or name in listed) and (directory / name / "config.json").is_file():
            parts["denoiser"] = directory / name
            break
    else:
        raise InputFileError(
            f"pipeline directory {str(directory)!r} has no {' or '.join(DENOISERS)} component "
            "with a config.json; pass the pipeline's save_pretrained directory"
        )
    parts["scheduler"] = find_scheduler(directory)
    if (listed is None or "vae" in listed) and (directory / "vae" / "config.json").is_file():
        parts["vae"] = directory / "vae"
    return parts


def shape_of(module, shape, max_sample_numel: float = MAX_SAMPLE_NUMEL) -> tuple[int, ...]:
    if shape is not None:
        return tuple(shape)
    config = getattr(module, "config", {})
    size, channels = config.get("sample_size"), config.get("in_channels")
    if size is None or channels is None:
        raise InvalidArgumentError("cannot read the sample shape from the model's config; pass shape=(C, H, W)")
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    shape = (int(channels), int(h), int(w))
    check_sample_numel(shape, f"{type(module).__name__} config (in_channels, sample_size)", max_sample_numel)
    return shape


def _as_decoder(vae):
    if vae is None or isinstance(vae, LatentDecoder):
        return vae
    if isinstance(vae, torch.nn.Module) and hasattr(vae, "decode"):
        return LatentDecoder(vae)
    if callable(vae):
        return vae
    raise TypeError(
        f"vae={vae!r} must be a diffusers autoencoder (AutoencoderKL, AutoencoderTiny), a directory, "
        "or a callable latents -> images"
    )


def load_diffusers(
    source,
    scheduler=None,
    prediction_type: str | None = None,
    shape=None,
    name: str | None = None,
    vae=None,
    max_params: float = MAX_PARAMS,
    max_train_timesteps: int = MAX_TRAIN_TIMESTEPS,
    max_sample_numel: float = MAX_SAMPLE_NUMEL,
    network_timesteps: str | None = None,
) -> ScoreModel:
    """A diffusers model or pipeline (directory or object) with its scheduler as a ScoreModel.

    ``vae``: an autoencoder (object or directory) whose decoder fills ``res.decoded`` (a pipeline's own VAE
    is used by default).  ``prediction_type`` overrides the scheduler config's.  ``network_timesteps``: how a
    time between training timesteps becomes the network's timestep, one of
    ``samplekit.diffusers.conventions.TIMESTEP_RULES`` ("linear", "sigma", "log_sigma", "log_sigma_round",
    "log_sigma_floor"); by default the scheduler config's own (e.g. DPMSolverMultistep with
    ``use_karras_sigmas`` rounds to integers), so that its grid is reproduced."""
    if isinstance(source, (str, Path)):
        directory = Path(source)
        if not directory.is_dir():
            raise InputFileError(f"source {str(directory)!r} is not a directory; pass a save_pretrained directory")
        if (directory / "config.json").is_file():
            module_dir, parts = directory, {}
        else:
            parts = pipeline_parts(directory)
            module_dir = parts["denoiser"]
        scheduler = scheduler if scheduler is not None else parts.get("scheduler") or find_scheduler(module_dir)
        process = process_of(scheduler, prediction_type, max_train_timesteps, network_timesteps)  # cheap checks first
        module = load_module_dir(module_dir, max_params)
        if vae is None and "vae" in parts:
            vae = load_module_dir(parts["vae"], max_params)
        name = name or directory.name
    else:
        module = source
        if hasattr(source, "components") and scheduler is None:  # a DiffusionPipeline object
            parts = source.components
            module = next((parts[k] for k in DENOISERS if parts.get(k) is not None), None)
            if module is None:
                raise InvalidArgumentError(f"pipeline {type(source).__name__} has no unet or transformer component")
            scheduler, vae = parts.get("scheduler"), vae if vae is not None else parts.get("vae")
        if scheduler is None:
            raise InvalidArgumentError(
                "loading a diffusers model object needs its scheduler: pass scheduler= (a diffusers "
                "scheduler, its config dict or a scheduler_config.json path)"
            )
        process = process_of(scheduler, prediction_type, max_train_timesteps, network_timesteps)
        name = name or type(source).__name__
    if isinstance(vae, (str, Path)):
        vae = load_module_dir(Path(vae), max_params)
    if isinstance(module, torch.nn.Module):
        module.eval()
    model = ScoreModel(
        DiffusersNet(module, process.timestep_of, process.timestep_rule),
        process.sde,
        shape_of(module, shape, max_sample_numel),
        process.parametrization,
        name=name,
        decoder=_as_decoder(vae),
    )
    # the checkpoint's scheduler, carried on the model for grids and reports (no ScoreModel field)
    model.schedule_options = dict(process.schedule_options)  # type: ignore[attr-defined]
    model.scheduler_class = process.scheduler_class  # type: ignore[attr-defined]
    return model
