"""A diffusers scheduler config as a samplekit process: the SDE, the parametrisation, and the map from
samplekit time t to the network's ``timestep`` argument.

DDPM family (DDPM, DDIM, DPM-Solver, UniPC, Euler, ... : anything with ``alphas_cumprod``):
    x_n = sqrt(abar_n) x0 + sqrt(1 - abar_n) eps  ->  ``DiscreteVPSDE(abar)``, t = (n + 1) / N,
    timestep = N t - 1 (``samplekit.discrete``);  prediction_type epsilon -> eps, sample -> x0,
    v_prediction -> v (v = alpha eps - sigma x0).
Flow matching (``FlowMatchEulerDiscreteScheduler``, SD3 / Flux):
    x_sigma = (1 - sigma) x0 + sigma eps, the network predicts u = dx/dsigma = eps - x0
    ->  ``rectified_flow`` (alpha_t = 1 - t, sigma_t = t), parametrisation ``flow``, t = sigma,
    timestep = N sigma.  The scheduler's ``shift`` (sigma' = shift sigma / (1 + (shift - 1) sigma),
    Esser et al. 2024, eq. 23) is kept as the schedule option ``shift=`` for samplekit's own grids.
    t_min is the smallest sigma the scheduler ever evaluates the network at (the last sigma before 0
    of its inference grid, whatever the number of steps), so diffusers' last Euler step to sigma = 0,
    x - sigma u = the x0 prediction there, is samplekit's ``denoise_final`` at t_min (see ``diffusers_grid``).
The conventions themselves (abar from the config, prediction types, the flow t_min) live in
``samplekit.diffusers.conventions``; this module reads configs and builds the process from them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from samplekit.diffusers.conventions import (
    PREDICTION_TYPES,
    alphas_cumprod_of,
    flow_t_min,
    network_timestep,
    parametrization_of,
    timestep_rule_of,
)
from samplekit.discrete import DiscreteVPSDE
from samplekit.errors import CheckpointError, InputFileError, InvalidArgumentError, ResourceLimitError
from samplekit.sde import SDE

__all__ = ["PREDICTION_TYPES", "Process", "flow_t_min", "process_of", "read_scheduler_config"]
SCHEDULER_FILE = "scheduler_config.json"
#: a config asking for more training timesteps than this is refused (each costs a few floats per array)
MAX_TRAIN_TIMESTEPS = 100_000


@dataclass
class Process:
    """What a scheduler config says about the model: its SDE, parametrisation and timestep map."""

    sde: SDE
    parametrization: str
    timestep_of: Callable[[torch.Tensor, torch.dtype], torch.Tensor]  # (t, network dtype) -> timestep
    scheduler_class: str
    schedule_options: dict = field(default_factory=dict)  # e.g. {"shift": 3.0} for SD3
    timestep_rule: str | None = None  # DDPM family: how a noise level becomes the network's timestep


def read_scheduler_config(scheduler) -> tuple[dict, str]:
    """(config dict, class name) of a diffusers scheduler object, its config dict, or a config path."""
    if isinstance(scheduler, (str, Path)):
        path = Path(scheduler)
        path = path / SCHEDULER_FILE if path.is_dir() else path
        if not path.is_file():
            raise InputFileError(
                f"scheduler={str(scheduler)!r}: no {SCHEDULER_FILE} there; pass the directory "
                "written by scheduler.save_pretrained(dir) or the config file"
            )
        scheduler = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(scheduler, dict):
        return dict(scheduler), str(scheduler.get("_class_name", ""))
    config = getattr(scheduler, "config", None)
    if config is None:
        raise TypeError(f"scheduler={scheduler!r} is not a diffusers scheduler, its config dict or a config path")
    return dict(config), type(scheduler).__name__


def check_train_timesteps(config: dict, limit: int = MAX_TRAIN_TIMESTEPS) -> int:
    """num_train_timesteps of a scheduler config, refused before anything is built if absurd."""
    n = config.get("num_train_timesteps", 1000)
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise CheckpointError(f"the scheduler config's num_train_timesteps={n!r} must be an integer >= 2")
    if n > limit:
        raise ResourceLimitError(
            f"the scheduler config asks for num_train_timesteps={n:,}, above the limit of {limit:,}; "
            "if this is intended, raise it with load_model(..., max_train_timesteps=N)"
        )
    return n


def process_of(
    scheduler,
    prediction_type: str | None = None,
    max_train_timesteps: int = MAX_TRAIN_TIMESTEPS,
    network_timesteps: str | None = None,
) -> Process:
    """The samplekit process of a diffusers scheduler (object, config dict or path).  ``network_timesteps``:
    the rule giving the network's timestep between training timesteps (``conventions.TIMESTEP_RULES``);
    None takes the scheduler's own (``conventions.timestep_rule_of``)."""
    config, class_name = read_scheduler_config(scheduler)
    n_train = check_train_timesteps(config, max_train_timesteps)
    if config.get("use_flow_sigmas") or config.get("prediction_type") == "flow_prediction":
        raise CheckpointError(
            f"{class_name or 'the scheduler'} is configured for flow sigmas (use_flow_sigmas / "
            "flow_prediction); pass the model's FlowMatchEulerDiscreteScheduler config instead"
        )
    unnamed_flow = not class_name and "shift" in config and "beta_schedule" not in config  # a bare config dict
    if class_name.startswith("FlowMatch") or unnamed_flow:
        if prediction_type not in (None, "flow", "flow_prediction"):
            raise InvalidArgumentError(
                f"prediction_type={prediction_type!r} does not fit {class_name}: a flow-matching model "
                "predicts the velocity (parametrisation 'flow'); leave prediction_type unset"
            )
        if network_timesteps is not None:
            raise InvalidArgumentError(
                "network_timesteps= applies to DDPM-family schedulers; a flow-matching model is fed N sigma"
            )
        return _flow_process(config, n_train, class_name)
    return _vp_process(config, class_name, prediction_type, network_timesteps)


def _vp_process(config: dict, class_name: str, prediction_type: str | None, rule: str | None) -> Process:
    sde = DiscreteVPSDE(alphas_cumprod_of(config, class_name))
    parametrization = parametrization_of(config, prediction_type)
    rule = rule or timestep_rule_of(config, class_name)
    network_timestep(sde, torch.tensor([0.5], dtype=torch.float64), rule)  # an unknown rule: refused now

    def timestep_of(t, dtype):
        return network_timestep(sde, t, rule).to(dtype)

    return Process(sde, parametrization, timestep_of, class_name or "DDPMScheduler", timestep_rule=rule)


def _flow_process(config: dict, n_train: int, class_name: str) -> Process:
    from samplekit.sde import RectifiedFlowSDE

    shift = float(config.get("shift", 1.0))
    if not shift > 0:
        raise CheckpointError(f"the scheduler config's shift={shift!r} must be positive")
    sde = RectifiedFlowSDE(t_min=flow_t_min(config))

    def timestep_of(t, dtype):  # diffusers: timestep = sigma N, computed in the network's dtype
        return t.to(dtype) * n_train

    options = {"shift": shift} if shift != 1.0 else {}
    return Process(sde, "flow", timestep_of, class_name or "FlowMatchEulerDiscreteScheduler", options)
