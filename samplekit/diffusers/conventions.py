"""diffusers' scheduler conventions on samplekit's processes and solvers: the one place that knows them.

The process of a scheduler config (used by the ``diffusers`` loader):

* ``alphas_cumprod_of(config)``: abar_n of the training schedule (betas from ``beta_schedule`` /
  ``trained_betas``, ``rescale_betas_zero_snr``), as diffusers' DDPM-family schedulers build it;
* ``parametrization_of(config)``: ``prediction_type`` epsilon -> eps, sample -> x0, v_prediction -> v;
* ``flow_t_min(config)``: the smallest sigma FlowMatchEulerDiscreteScheduler evaluates the network at.

The inference grid (``scheduler_grid``) and the solver twin (``scheduler_solver``) of a scheduler after
``set_timesteps(n)``, for ``sk.sample(model, solver, ts=ts, **options)``; the spacing of its timesteps
(``timestep_spacing``, ``steps_offset``) is ``samplekit.discrete.diffusers_timesteps``.

The timestep the network is fed (``timestep_rule_of(config, class)``, applied by ``network_timestep``): at a
training timestep n (t = (n + 1) / N) every rule gives n; between them diffusers' schedulers differ:

* ``"linear"``: n = N t - 1 (samplekit's own, B(t) linear in t): DDIM, DDPM, PNDM, and the DPM-Solver / UniPC /
  DEIS family on their integer timesteps;
* ``"sigma"``: n linear in sigma = sigma_t / alpha_t between training sigmas (``np.interp``): Euler, Heun, LMS,
  KDPM2 with ``timestep_spacing="linspace"``, whose timesteps are fractional;
* ``"log_sigma"``: n linear in log sigma (diffusers' ``_sigma_to_t``): those Euler-family schedulers with
  ``use_karras_sigmas`` / ``use_exponential_sigmas`` / ``use_beta_sigmas``;
* ``"log_sigma_round"`` / ``"log_sigma_floor"``: that value rounded (Karras, Lu lambdas) or truncated
  (exponential, beta: an int64 cast) by the integer-timestep schedulers (DPM-Solver, UniPC, DEIS).
  The ``diffusers`` loader takes the rule of the checkpoint's scheduler config (option ``network_timesteps``).

Call ``scheduler.set_timesteps(n)`` first; ``scheduler_grid(scheduler, model)`` returns the grid of model
times the pipeline visits and the options that reproduce its last step:

* DDPM family: timestep n maps to t = (n + 1) / N (``DiscreteVPSDE.time_of``), an interpolated sigma
  (Karras, exponential, beta, fractional Euler timesteps) to the t of its log-SNR.  The last step goes to
  - DDIM with ``set_alpha_to_one=False``, DPM-Solver / UniPC / Euler with ``final_sigmas_type="sigma_min"``:
    abar_0, i.e. t_min -> t_min is appended (nothing if the grid already ends there: that step is the
    identity, x = alpha x0 + sigma eps);
  - DDIM with ``set_alpha_to_one=True`` (when its last step n - N // m falls below 0), DPM-Solver / UniPC /
    Euler with ``final_sigmas_type="zero"``: abar = 1,
    the output is the x0 prediction at the last timestep: ``denoise_final=True`` at the grid's last time.
    This is diffusers' convention, selected by its config only; at a last timestep above 0 (trailing or
    leading spacing) it returns a denoised estimate taken at a noise level above t_min, which samplekit's
    own grids never do.
* DDIM steps from timestep n to n - N // m (m steps) whatever the next timestep: ``scheduler_solver`` gives
  ddim's ``stride`` option for that.
* Flow matching (FlowMatchEulerDiscreteScheduler): t = sigma; diffusers' last step, sigma_last -> 0, is
  x - sigma_last u = the x0 prediction at sigma_last = t_min (see ``flow_t_min``), so the grid is the
  sigmas without the final 0, with ``denoise_final=True``.

``scheduler_solver(scheduler)`` names the samplekit solver (and options) that takes the scheduler's steps.
A scheduler or configuration it does not name is refused there, with the reason: none silently differs.

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
#: the floor these schedulers put under a zero-terminal-SNR schedule's last abar (it would be 0)
ZERO_SNR_FLOOR = 2.0**-24
#: the schedulers that keep abar_{N-1} = 0 exactly under ``rescale_betas_zero_snr`` (no floor)
ZERO_SNR_EXACT = ("DDIMScheduler", "DDPMScheduler")


def alphas_cumprod_of(config: dict, class_name: str = "") -> Tensor:
    """abar_n = prod_{i <= n} (1 - beta_i), n = 0..N-1, float64, of a DDPM-family scheduler config, built by
    diffusers' own DDPMScheduler (``beta_schedule`` linear / scaled_linear / squaredcos_cap_v2 / ...,
    ``trained_betas``); with ``rescale_betas_zero_snr`` (Lin et al. 2023, alg. 1) the last abar is 0: kept so
    for ``class_name`` DDIMScheduler / DDPMScheduler, floored at 2^-24 for the other schedulers (as each does)
    and for a config without a class name."""
    from diffusers import DDPMScheduler

    ddpm = DDPMScheduler.from_config({k: config[k] for k in SCHEDULE_KEYS if k in config})
    abar = torch.as_tensor(ddpm.alphas_cumprod, dtype=torch.float64).clone()
    if class_name not in ZERO_SNR_EXACT:
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


# --- the timestep the network is fed ------------------------------------------------------------------
#: config keys that replace the training sigmas by an interpolated inference schedule
SIGMA_OPTIONS = ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "use_lu_lambdas")
#: schedulers whose inference timesteps are int64 (interpolated ones rounded or truncated)
INTEGER_TIMESTEPS = (
    "DPMSolverMultistepScheduler",
    "DPMSolverSinglestepScheduler",
    "UniPCMultistepScheduler",
    "DEISMultistepScheduler",
)
#: schedulers stepping in sigma with float timesteps (fractional under linspace spacing)
SIGMA_SCHEDULERS = (
    "EulerDiscreteScheduler",
    "EulerAncestralDiscreteScheduler",
    "HeunDiscreteScheduler",
    "LMSDiscreteScheduler",
    "KDPM2DiscreteScheduler",
    "KDPM2AncestralDiscreteScheduler",
)
TIMESTEP_RULES = ("linear", "sigma", "log_sigma", "log_sigma_round", "log_sigma_floor")
#: diffusers truncates the timestep of an interpolated sigma computed in float64, samplekit that of the float32
#: sigma the scheduler steps with (a timestep error below 1e-5): a value within this above an integer k is
#: taken as diffusers meets the ends of its exponential / beta grids, exp(log(s_k)) just below s_k, i.e. k - 1
INTEGER_SNAP = 1e-4


def sigma_option(config: dict) -> str | None:
    """The config's interpolated-sigma option (``use_karras_sigmas``, ...) or None; two at once are refused."""
    on = [k for k in SIGMA_OPTIONS if config.get(k)]
    if len(on) > 1:
        raise CheckpointError(f"the scheduler config sets {' and '.join(on)}: diffusers accepts only one of them")
    return on[0] if on else None


def timestep_rule_of(config: dict, class_name: str) -> str:
    """The rule by which the scheduler ``class_name`` with ``config`` turns a noise level into the network's
    ``timestep`` (module docstring): one of ``TIMESTEP_RULES``."""
    option = sigma_option(config)
    if class_name in INTEGER_TIMESTEPS:
        if option is None:
            return "linear"
        cosine = config.get("beta_schedule") == "squaredcos_cap_v2"
        rounds = option in ("use_karras_sigmas", "use_lu_lambdas")
        if class_name == "DPMSolverMultistepScheduler" and cosine:
            rounds = False  # diffusers leaves the cosine schedule's timesteps unrounded, then truncates
        return "log_sigma_round" if rounds else "log_sigma_floor"
    if class_name in SIGMA_SCHEDULERS:
        return "log_sigma" if option else "sigma"
    return "linear"


def network_timestep(sde: DiscreteVPSDE, t: Tensor, rule: str = "linear") -> Tensor:
    """The training timestep diffusers feeds the network at model time t (same dtype as t), by ``rule``:

    linear             n = N t - 1
    sigma              n = interp(s, s_train, 0..N-1)        s = sigma_t / alpha_t, s_n = sqrt(1/abar_n - 1)
    log_sigma          n = interp(log s, log s_train, 0..N-1), extrapolated past the ends as diffusers
                       clamps (``_sigma_to_t``: the weight clipped to [0, 1])
    log_sigma_round    round(that), half to even (np.round)
    log_sigma_floor    floor(that) (diffusers' int64 cast of a positive value)
    """
    if rule not in TIMESTEP_RULES:
        raise InvalidArgumentError(f"network_timesteps={rule!r} is unknown; use one of {', '.join(TIMESTEP_RULES)}")
    if rule == "linear":
        return sde.timestep(t)
    B = sde.B(t).to(torch.float64)
    s = torch.expm1(B).sqrt()  # sigma / alpha
    train = torch.sqrt(1 / sde.alphas_cumprod.to(s.device) - 1)
    if rule == "sigma":
        n = _interp(s, train)
    else:
        n = _interp(s.clamp_min(1e-10).log(), train.log())
        if rule == "log_sigma_round":
            n = n.round()
        elif rule == "log_sigma_floor":  # a node of the table reached from below, as exp(log(s)) does
            n = (n - INTEGER_SNAP).floor().clamp_min(0)
    return n.to(t.dtype)


def _interp(x: Tensor, xp: Tensor) -> Tensor:
    """The fractional index of x in the increasing table xp, linear between entries, clamped to [0, len - 1]."""
    flat = x.reshape(-1).contiguous()
    k = (torch.searchsorted(xp, flat, right=True) - 1).clamp(0, xp.numel() - 2)
    w = ((flat - xp[k]) / (xp[k + 1] - xp[k])).clamp(0, 1)
    return (k + w).reshape(x.shape)


# --- the grid a scheduler walks ---------------------------------------------------------------------
def scheduler_grid(scheduler, sde) -> tuple[Tensor, dict]:
    """(ts, options): the decreasing float64 grid of model times and the ``sk.sample`` options
    (``denoise_final``) that walk the pipeline's grid after ``scheduler.set_timesteps(n)``.  ``sde``: the
    model's SDE, or the loaded model itself, whose network timestep rule is then checked against the
    scheduler's (a model loaded from another scheduler's config is refused, with the option that fixes it)."""
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
    model, sde = (sde, sde.sde) if hasattr(sde, "sde") else (None, sde)
    if isinstance(sde, DiscreteVPSDE):
        if model is not None:
            _check_rule(scheduler, model)
        return _vp_grid(scheduler, sde)
    if type(scheduler).__name__.startswith("FlowMatch"):
        return _flow_grid(scheduler, sde)
    raise InvalidArgumentError(
        f"cannot map {type(scheduler).__name__}'s grid onto {sde!r}; load the model with its own "
        "scheduler (a DDPM-family scheduler gives a DiscreteVPSDE, FlowMatchEuler a rectified flow)"
    )


def _check_rule(scheduler, model) -> None:
    abar = getattr(scheduler, "alphas_cumprod", None)
    if abar is not None and float(abar[-1]) != float(model.sde.alphas_cumprod[-1]):
        raise InvalidArgumentError(
            f"{type(scheduler).__name__}'s last alphas_cumprod is {float(abar[-1]):.3g}, the model's "
            f"{float(model.sde.alphas_cumprod[-1]):.3g} (zero terminal SNR: DDIM keeps 0, DPM-Solver / Euler / "
            "UniPC floor it at 2^-24): load the model with this scheduler's config"
        )
    want = timestep_rule_of(dict(scheduler.config), type(scheduler).__name__)
    have = getattr(getattr(model, "net", None), "timestep_rule", None)
    if have is not None and have != want:
        raise InvalidArgumentError(
            f"{type(scheduler).__name__} with this config feeds the network timesteps by the rule {want!r}, "
            f"the model was loaded with {have!r}: load it with this scheduler's config, or with "
            f"load_model(..., network_timesteps={want!r})"
        )


def _vp_grid(scheduler, sde: DiscreteVPSDE) -> tuple[Tensor, dict]:
    config = dict(scheduler.config)
    steps = torch.as_tensor(scheduler.timesteps).to(torch.float64)
    sigmas = getattr(scheduler, "sigmas", None)
    on_grid = steps == steps.round()
    if sigmas is not None and len(sigmas) == len(steps) + 1:
        sig = torch.as_tensor(sigmas).to(torch.float64)
        off = sde.t_from_log_snr(-torch.log(sig[:-1]))  # an interpolated noise level: the t of its log-SNR
        exact = on_grid & (sigma_option(config) is None)
        ts = torch.where(exact, sde.time_of(steps), off)
    elif sigmas is None and bool(on_grid.all()):
        ts = sde.time_of(steps)
    else:
        raise InvalidArgumentError(
            f"{type(scheduler).__name__} visits {len(steps)} timesteps with {0 if sigmas is None else len(sigmas)} "
            "sigmas (a scheduler evaluating the network twice a step, or a custom grid): scheduler_grid does "
            "not map it; pass ts= yourself"
        )
    if len(steps) > 1 and bool((steps == steps[0]).sum() > 1):
        raise InvalidArgumentError(
            f"{type(scheduler).__name__} with {len(steps)} steps starts on timestep {int(steps[0])} twice (its "
            "interpolated sigmas round or truncate to one training timestep): diffusers' own loop then takes "
            "the first step from the second sigma and fails at the end; pick another step count or sigma option"
        )
    if not bool((ts[1:] < ts[:-1]).all()):
        raise InvalidArgumentError(
            f"{type(scheduler).__name__}'s timesteps do not strictly decrease; pass ts= yourself"
        )
    ts = ts.clamp(sde.t_min, sde.T)  # sigma_max / sigma_min of an interpolated grid, stored in float32
    if _final_is_alpha_one(scheduler):
        return ts, {"denoise_final": True}
    if _ends_at_final_sigma(scheduler):
        ts[-1] = sde.t_min  # the last step, sigma_min -> sigma_min, is the identity: not taken
    else:
        ts = torch.cat([ts, ts.new_tensor([sde.t_min])])
    return ts, {}


def _ends_at_final_sigma(scheduler) -> bool:
    """Whether the last timestep already sits at the final noise level abar_0 (its step is the identity)."""
    sigmas = getattr(scheduler, "sigmas", None)
    if sigmas is not None:
        return bool(float(sigmas[-2]) == float(sigmas[-1]))
    return bool(float(scheduler.timesteps[-1]) == 0)


def _final_is_alpha_one(scheduler) -> bool:
    """Whether the pipeline's last step lands on abar = 1 (returns the x0 prediction) instead of abar_0."""
    final = getattr(scheduler, "final_alpha_cumprod", None)
    if final is not None:  # DDIM: abar of timestep n - N // m, final_alpha_cumprod only below timestep 0
        prev = int(scheduler.timesteps[-1]) - scheduler.config.num_train_timesteps // scheduler.num_inference_steps
        return bool(prev < 0 and float(final) == 1.0)
    sigmas = getattr(scheduler, "sigmas", None)
    if sigmas is not None:  # DPM-Solver, UniPC, DEIS, Euler...: the last sigma, 0 or sigma_min
        return bool(float(sigmas[-1]) == 0.0)
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


# --- the solver that takes the scheduler's steps -------------------------------------------------------
def dpm_solver_orders(scheduler, n_steps: int) -> tuple[int, ...]:
    """The order of each of the first ``n_steps`` steps of DPMSolverMultistepScheduler's (and
    DEISMultistepScheduler's) loop over its m timesteps: step i has order min(solver_order, i + 1), except
    the last (i = m - 1) order 1 when ``euler_at_final``, ``final_sigmas_type="zero"`` or
    (``lower_order_final`` and m < 15), and the one before at most 2 when ``lower_order_final`` and m < 15."""
    config, m = scheduler.config, len(scheduler.timesteps)
    order, lof = int(config.get("solver_order", 2)), bool(config.get("lower_order_final", True))
    plan = []
    for i in range(m):
        p = min(order, i + 1)
        if i == m - 1 and (
            config.get("euler_at_final") or (lof and m < 15) or config.get("final_sigmas_type") == "zero"
        ):
            p = 1
        if i == m - 2 and lof and m < 15:
            p = min(p, 2)
        plan.append(p)
    return tuple(plan[:n_steps])


def scheduler_solver(scheduler) -> tuple[str, dict]:
    """(solver name, options): the samplekit solver that takes the same steps as ``scheduler`` on its grid
    (``scheduler_grid``), after ``scheduler.set_timesteps(n)``:

    * DDIMScheduler (eta = 0 in the pipeline's call) -> ``ddim`` with ``stride = (N // m) / N``, diffusers'
      previous-timestep rule
    * EulerDiscreteScheduler (epsilon or v_prediction) -> ``ddim`` (Euler in sigma = DDIM)
    * DPMSolverMultistepScheduler (dpmsolver++, midpoint, order 2 / 3) -> ``dpmpp_2m`` / ``dpmpp_3m``, with
      ``orders`` the scheduler's own plan (``dpm_solver_orders``) and, for order 3, ``midpoint_weights=True``
      (its weights); samplekit's plain names keep their own defaults (lower_order_final
      at every step count, the interpolant's full second derivative)
    * DEISMultistepScheduler (deis, logrho, order p) -> ``deis`` (order p, ``orders`` its plan)
    * UniPCMultistepScheduler (predict_x0, bh1 / bh2, order p, ``final_sigmas_type="sigma_min"``, a grid
      ending above sigma_min) -> ``unipc``
    * FlowMatchEulerDiscreteScheduler -> ``ode_euler`` (Euler in t on u = eps - x0)

    Any other scheduler or configuration is refused with the reason.
    """
    name, config = type(scheduler).__name__, scheduler.config
    n = getattr(scheduler, "num_inference_steps", None)
    if n is None:
        raise InvalidArgumentError(
            "call scheduler.set_timesteps(num_inference_steps) before scheduler_solver(scheduler)"
        )
    if name == "DDIMScheduler":
        N = int(config.get("num_train_timesteps", 1000))
        first = [int(k) for k in scheduler.timesteps[:2]]
        if float(scheduler.alphas_cumprod[-1]) == 0 and first[0] == N - 1 and len(first) > 1:
            if first[0] - N // n != first[1]:
                raise InvalidArgumentError(
                    f"DDIMScheduler with zero terminal SNR and {n} steps takes its first step from alpha_T = 0 to "
                    f"timestep {first[0] - N // n}, then evaluates at {first[1]}; samplekit's first step from "
                    "alpha_T = 0 (the core's alpha_zero_step) lands on the next grid time. Pick a step count "
                    "with the two equal (e.g. one dividing num_train_timesteps) or leading spacing"
                )
        return "ddim", {"stride": (N // n) / N}
    if name == "EulerDiscreteScheduler":
        if config.get("prediction_type", "epsilon") not in ("epsilon", "v_prediction", "sample"):
            raise InvalidArgumentError(
                f"EulerDiscreteScheduler: prediction_type={config.get('prediction_type')!r} has no twin"
            )
        if config.get("timestep_type", "discrete") != "discrete" or config.get("rescale_betas_zero_snr"):
            raise InvalidArgumentError(
                "EulerDiscreteScheduler with timestep_type='continuous' or rescale_betas_zero_snr has no "
                "samplekit twin that scheduler_solver has checked; use DDIMScheduler or DPMSolverMultistep"
            )
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
        steps = _grid_steps(scheduler)
        plan = dpm_solver_orders(scheduler, len(scheduler.timesteps))
        if plan[-1] == 3 and _ends_at_final_sigma(scheduler):
            raise InvalidArgumentError(
                f"DPMSolverMultistepScheduler(solver_order=3) with {len(plan)} steps ends on a third-order step "
                "from sigma_min to sigma_min (h = 0), which divides by h: diffusers' own result is NaN. Use "
                "fewer than 15 steps, lower_order_final, final_sigmas_type='zero' or the training sigmas"
            )
        options: dict = {"orders": plan[:steps]}
        if order == 3:
            options["midpoint_weights"] = True
        return f"dpmpp_{order}m", options
    if name == "DEISMultistepScheduler":
        if config.get("algorithm_type", "deis") != "deis" or config.get("solver_type", "logrho") != "logrho":
            raise InvalidArgumentError(
                "only DEISMultistepScheduler(algorithm_type='deis', solver_type='logrho') has a twin"
            )
        order = int(config.get("solver_order", 3))
        return "deis", {"solver_order": order, "orders": dpm_solver_orders(scheduler, _grid_steps(scheduler))}
    if name == "UniPCMultistepScheduler":
        if not config.get("predict_x0", True) or config.get("disable_corrector"):
            raise InvalidArgumentError(
                "only UniPCMultistepScheduler with predict_x0=True and no disable_corrector has "
                "a samplekit twin (unipc)"
            )
        if config.get("final_sigmas_type", "zero") == "zero":
            raise InvalidArgumentError(
                "UniPCMultistepScheduler with final_sigmas_type='zero' ends on a predictor step to sigma = 0 "
                "that samplekit's unipc does not take; use final_sigmas_type='sigma_min'"
            )
        if _ends_at_final_sigma(scheduler):
            raise InvalidArgumentError(
                "this UniPCMultistepScheduler grid already ends at sigma_min (interpolated sigmas, or a last "
                "timestep 0): diffusers' last step is then a corrector-only step (one more network call "
                "correcting the step before), which samplekit's unipc does not take; use the training sigmas "
                "with final_sigmas_type='sigma_min'"
            )
        return "unipc", {
            "solver_order": int(config.get("solver_order", 2)),
            "variant": config.get("solver_type", "bh2"),
            "lower_order_final": bool(config.get("lower_order_final", True)),
        }
    if name == "FlowMatchEulerDiscreteScheduler":
        return "ode_euler", {}
    raise InvalidArgumentError(f"{name} has no samplekit twin that scheduler_solver knows; pick a solver yourself")


def _grid_steps(scheduler) -> int:
    """The number of solver steps of ``scheduler_grid``'s grid (the denoise of a final abar = 1 not counted)."""
    m = len(scheduler.timesteps)
    return m - 1 if _final_is_alpha_one(scheduler) or _ends_at_final_sigma(scheduler) else m
