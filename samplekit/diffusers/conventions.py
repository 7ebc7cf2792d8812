"""diffusers' scheduler conventions on samplekit's processes and solvers: the one place that knows them.

The process of a scheduler config (used by the ``diffusers`` loader):

* ``alphas_cumprod_of(config)``: abar_n of the training schedule (betas from ``beta_schedule`` /
  ``trained_betas``, ``rescale_betas_zero_snr``), as diffusers' DDPM-family schedulers build it;
* ``parametrization_of(config)``: ``prediction_type`` epsilon -> eps, sample -> x0, v_prediction -> v;
* ``flow_t_min(config)``: the smallest sigma FlowMatchEulerDiscreteScheduler evaluates the network at.

The inference grid (``scheduler_grid``) and the solver twin (``scheduler_solver``) of a scheduler after
``set_timesteps(n)``, for ``sk.sample(model, solver, ts=ts, **options)``; the spacing of its timesteps
(``timestep_spacing``, ``steps_offset``) is ``samplekit.discrete.diffusers_timesteps``.

Call ``scheduler.set_timesteps(n)`` first; ``scheduler_grid(scheduler, model.sde)`` returns the grid of model
times the pipeline visits and the options that reproduce its last step:

* DDPM family: each timestep n maps to t = (n + 1) / N (``DiscreteVPSDE.time_of``).  The last step goes to
  - DDIM with ``set_alpha_to_one=False``, DPM-Solver / UniPC with ``final_sigmas_type="sigma_min"``:
    abar_0, i.e. t_min -> t_min is appended (nothing if the last timestep is already 0: that step would
    be the identity, x = alpha x0 + sigma eps);
  - DDIM with ``set_alpha_to_one=True``, DPM-Solver / UniPC with ``final_sigmas_type="zero"``: abar = 1, so
    the output is the x0 prediction at the last timestep.  When that timestep is 0 (t_min) this is
    ``denoise_final=True``; at a larger timestep it is the over-sharpening shortcut samplekit refuses
    (every samplekit sampler integrates down to t_min), so it raises.
* Flow matching (FlowMatchEulerDiscreteScheduler): t = sigma; diffusers' last step, sigma_last -> 0, is
  x - sigma_last u = the x0 prediction at sigma_last = t_min (see ``diffusers_process.flow_t_min``), so the
  grid is the sigmas without the final 0, with ``denoise_final=True``.

``scheduler_solver(scheduler)`` names the samplekit solver (and options) that takes the scheduler's steps.

A scheduler that clips or thresholds its x0 prediction (``clip_sample``, ``thresholding``) is refused: no
samplekit solver does that, so the same grid would silently compute something else.
"""

from __future__ import annotations

import torch

from samplekit.discrete import DiscreteVPSDE, diffusers_timesteps  # noqa: F401  (spacing: re-exported)
from samplekit.errors import CheckpointError, InvalidArgumentError
from samplekit.sde import SDE

Tensor = torch.Tensor

#: diffusers' ``prediction_type`` -> samplekit's parametrisation
PREDICTION_TYPES = {"epsilon": "eps", "sample": "x0", "v_prediction": "v"}
#: the config keys that define a DDPM-family training schedule
SCHEDULE_KEYS = (
    "num_train_timesteps",
    "beta_start",
    "beta_end",
    "beta_schedule",
    "trained_betas",
    "rescale_betas_zero_snr",
    "prediction_type",
)
#: the floor diffusers puts under a zero-terminal-SNR schedule's last abar (it would be 0)
ZERO_SNR_FLOOR = 2.0**-24


def alphas_cumprod_of(config: dict) -> Tensor:
    """abar_n = prod_{i <= n} (1 - beta_i), n = 0..N-1, float64, of a DDPM-family scheduler config, built by
    diffusers' own DDPMScheduler (``beta_schedule`` linear / scaled_linear / squaredcos_cap_v2 / ...,
    ``trained_betas``); with ``rescale_betas_zero_snr`` (Lin et al. 2023, alg. 1) the last abar is 0 and is
    floored at 2^-24 as diffusers' schedulers do."""
    from diffusers import DDPMScheduler

    ddpm = DDPMScheduler.from_config({k: config[k] for k in SCHEDULE_KEYS if k in config})
    abar = torch.as_tensor(ddpm.alphas_cumprod, dtype=torch.float64).clone()
    abar[-1] = abar[-1].clamp_min(ZERO_SNR_FLOOR)
    return abar


def parametrization_of(config: dict, prediction_type: str | None = None) -> str:
    """samplekit's parametrisation of the config's ``prediction_type`` (or of the override ``prediction_type``)."""
    kind = prediction_type or config.get("prediction_type", "epsilon")
    if kind not in PREDICTION_TYPES:
        raise InvalidArgumentError(f"prediction_type={kind!r} is unknown; use one of {', '.join(PREDICTION_TYPES)}")
    return PREDICTION_TYPES[kind]


def flow_t_min(config: dict) -> float:
    """The last sigma before 0 of FlowMatchEulerDiscreteScheduler's inference grid (any step count): the
    x0 prediction there is diffusers' last Euler step to sigma = 0."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    if config.get("use_dynamic_shifting") or config.get("invert_sigmas") or config.get("shift_terminal"):
        raise CheckpointError(
            "flow-matching schedulers with use_dynamic_shifting, invert_sigmas or shift_terminal are "
            "not supported; pass a scheduler config with a fixed shift"
        )
    keys = ("num_train_timesteps", "shift")
    sched = FlowMatchEulerDiscreteScheduler.from_config({k: config[k] for k in keys if k in config})
    sched.set_timesteps(2)
    return float(sched.sigmas[-2])


def scheduler_grid(scheduler, sde: SDE) -> tuple[Tensor, dict]:
    """(ts, options): the decreasing float64 grid of model times and the ``sk.sample`` options
    (``denoise_final``) that walk the pipeline's grid after ``scheduler.set_timesteps(n)``."""
    if getattr(scheduler, "timesteps", None) is None or getattr(scheduler, "num_inference_steps", None) is None:
        raise InvalidArgumentError(
            "call scheduler.set_timesteps(num_inference_steps) before scheduler_grid(scheduler, sde)"
        )
    clipping = [k for k in ("clip_sample", "thresholding") if scheduler.config.get(k)]
    if clipping:
        raise InvalidArgumentError(
            f"{type(scheduler).__name__} has {', '.join(k + '=True' for k in clipping)}: it clips the x0 "
            "prediction at every step, which samplekit's solvers do not; set it to False to compare"
        )
    if isinstance(sde, DiscreteVPSDE):
        return _vp_grid(scheduler, sde)
    if type(scheduler).__name__.startswith("FlowMatch"):
        return _flow_grid(scheduler, sde)
    raise InvalidArgumentError(
        f"cannot map {type(scheduler).__name__}'s grid onto {sde!r}; load the model with its own "
        "scheduler (a DDPM-family scheduler gives a DiscreteVPSDE, FlowMatchEuler a rectified flow)"
    )


def _vp_grid(scheduler, sde: DiscreteVPSDE) -> tuple[Tensor, dict]:
    steps = torch.as_tensor(scheduler.timesteps).to(torch.float64)
    if getattr(scheduler, "sigmas", None) is not None and scheduler.config.get("use_karras_sigmas", False):
        raise InvalidArgumentError("a grid with use_karras_sigmas falls between training timesteps; pass ts= yourself")
    last = float(steps[-1])
    ends_at_one = _final_is_alpha_one(scheduler, sde)
    ts = sde.time_of(steps)
    if ends_at_one:
        if last != 0:
            raise InvalidArgumentError(
                f"{type(scheduler).__name__} ends by returning its x0 prediction at timestep "
                f"{last:g} (set_alpha_to_one / final_sigmas_type='zero'), not at t_min: samplekit "
                "integrates to t_min. Use set_alpha_to_one=False or final_sigmas_type='sigma_min', or "
                "a grid whose last timestep is 0"
            )
        return ts, {"denoise_final": True}
    if last > 0:
        ts = torch.cat([ts, ts.new_tensor([sde.t_min])])
    return ts, {}


def _final_is_alpha_one(scheduler, sde: DiscreteVPSDE) -> bool:
    """Whether the pipeline's last step lands on abar = 1 (x0) instead of abar_0 (t_min)."""
    final = getattr(scheduler, "final_alpha_cumprod", None)
    if final is not None:  # DDIM, PNDM
        return bool(float(final) == 1.0)
    sigmas_type = scheduler.config.get("final_sigmas_type")
    if sigmas_type is not None:  # DPM-Solver, UniPC, DEIS...
        return sigmas_type == "zero"
    raise InvalidArgumentError(
        f"{type(scheduler).__name__}'s final step is not one scheduler_grid knows; build ts= "
        "with model.sde.time_of(scheduler.timesteps)"
    )


def _flow_grid(scheduler, sde: SDE) -> tuple[Tensor, dict]:
    sigmas = torch.as_tensor(scheduler.sigmas).to(torch.float64)
    if float(sigmas[-1]) != 0.0:
        raise InvalidArgumentError(f"{type(scheduler).__name__}'s grid ends at sigma={float(sigmas[-1]):g}, not 0")
    ts = sigmas[:-1]
    if float(ts[-1]) != sde.t_min:
        raise InvalidArgumentError(
            f"the grid's last sigma {float(ts[-1]):g} is not the model's t_min={sde.t_min:g}: load the "
            "model with this scheduler's config (its shift sets t_min)"
        )
    return ts, {"denoise_final": True}


def scheduler_solver(scheduler) -> tuple[str, dict]:
    """(solver name, options): the samplekit solver that takes the same steps as ``scheduler`` on its grid,
    after ``scheduler.set_timesteps(n)``:

    * DDIMScheduler (eta = 0 in the pipeline's call)    -> ``ddim``
    * DPMSolverMultistepScheduler (dpmsolver++, order 2 / 3, midpoint) -> ``dpmpp_2m`` / ``dpmpp_3m``;
      diffusers lowers the last steps' order only on grids of fewer than 15 steps, so
      ``lower_order_final = n < 15`` (on longer grids samplekit's own rule would also lower a last step
      much longer in log-SNR than the one before: turned off to match)
    * UniPCMultistepScheduler (predict_x0, bh1 / bh2, order p) -> ``unipc`` (order p, that variant);
      diffusers lowers the last step on every grid, samplekit below 15 steps (and on a long last step):
      the two agree below 15 steps
    * FlowMatchEulerDiscreteScheduler                  -> ``ode_euler`` (Euler in t on u = eps - x0)
    """
    name, config = type(scheduler).__name__, scheduler.config
    n = getattr(scheduler, "num_inference_steps", None)
    if n is None:
        raise InvalidArgumentError(
            "call scheduler.set_timesteps(num_inference_steps) before scheduler_solver(scheduler)"
        )
    if name == "DDIMScheduler":
        return "ddim", {}
    if name == "DPMSolverMultistepScheduler":
        order = config.get("solver_order", 2)
        if (
            config.get("algorithm_type") != "dpmsolver++"
            or config.get("solver_type") != "midpoint"
            or order not in (2, 3)
        ):
            raise InvalidArgumentError(
                "only DPMSolverMultistepScheduler(algorithm_type='dpmsolver++', solver_type="
                "'midpoint', solver_order=2 or 3) has a samplekit twin (dpmpp_2m / dpmpp_3m)"
            )
        return f"dpmpp_{order}m", {"lower_order_final": bool(config.get("lower_order_final", True)) and n < 15}
    if name == "UniPCMultistepScheduler":
        if not config.get("predict_x0", True) or config.get("disable_corrector"):
            raise InvalidArgumentError(
                "only UniPCMultistepScheduler with predict_x0=True and no disable_corrector has "
                "a samplekit twin (unipc)"
            )
        return "unipc", {
            "solver_order": int(config.get("solver_order", 2)),
            "variant": config.get("solver_type", "bh2"),
            "lower_order_final": bool(config.get("lower_order_final", True)),
        }
    if name == "FlowMatchEulerDiscreteScheduler":
        return "ode_euler", {}
    raise InvalidArgumentError(f"{name} has no samplekit twin that scheduler_solver knows; pick a solver yourself")
