"""``SamplekitScheduler``: any fixed-step samplekit solver, grid and option as a diffusers scheduler.

    pipe.scheduler = SamplekitScheduler.from_config(pipe.scheduler.config, solver="dpmpp_3m", schedule="karras")
    pipe.scheduler = SamplekitScheduler.from_config(pipe.scheduler.config, solver="restart", s_noise=1.0)
    pipe.scheduler = SamplekitScheduler.from_config(pipe.scheduler.config, solver="deis", ts=optimized_grid)

The model.  The config the scheduler is built from says what the network predicts and on which process:
a DDPM-family config (betas / ``alphas_cumprod``, ``rescale_betas_zero_snr``, ``prediction_type`` epsilon /
v_prediction / sample) is a ``DiscreteVPSDE`` with x_n = sqrt(abar_n) x0 + sqrt(1 - abar_n) eps, t = (n + 1)/N;
a flow-matching config (``FlowMatchEulerDiscreteScheduler``: SD3, Flux) is ``rectified_flow`` with the velocity
u = eps - x0, t = sigma, its ``shift`` (or, with ``use_dynamic_shifting``, shift = e^mu, resp. mu for
``time_shift_type="linear"``, from ``set_timesteps(mu=...)``) applied to the grid as ``sk.sample`` applies a
loaded model's shift.  The latents are samplekit's x itself (``init_noise_sigma`` = 1, ``scale_model_input``
is the identity), and the network's timestep is diffusers' (N t - 1, resp. N sigma), as the ``diffusers``
loader feeds it: the same pipeline gives the same numbers as ``sk.sample`` on ``sk.load_model(pipe)``.

The grid.  ``set_timesteps(n)`` builds n grid steps with the solver's schedule (``schedule=``,
``schedule_options=``; ``discrete`` takes the config's ``timestep_spacing`` / ``steps_offset``), or uses
``ts=`` (model times, e.g. from ``sk.optimize_schedule``), or the pipeline's ``timesteps=`` / ``sigmas=``.  A
dry run of samplekit's loop (``evaluations``) lists the times of the solver's network calls on it:
``scheduler.timesteps`` holds one entry per call (a two-stage solver has about 2n), and ``order`` is the
solver's calls per step (pipelines slice ``timesteps[t_start * order:]`` for img2img, as for diffusers' Heun).

The run.  ``step`` hands each output to the solver, which runs in samplekit's own loop in a worker thread
(``bridge``), and returns the next x the solver evaluates at (the final x after the last call).  Latents the
pipeline changes between calls (inpainting) replace the solver's x at step boundaries; at an intermediate
stage of a multi-stage step they only move that stage's evaluation (``bridge`` gives the rule).  A solver
whose first call is not at x_T (annealed Langevin, EDM Heun with churn) gets one leading entry in
``timesteps`` whose output is unused (``evaluations``).  Stochastic solvers draw from the ``generator``
passed to ``step`` (one, or one per sample), as diffusers' ``randn_tensor`` draws; pipelines that pass none
(SD3, Flux) leave them on torch's global generator (seed it with ``torch.manual_seed``).  For flow-matching
configs the solver ends with its final denoise (``denoise_final=True``: the x0 prediction at the last sigma,
diffusers' last step to sigma = 0).  ``pred_original_sample`` is the x0 prediction of each output.

Refused with a ``SamplekitError`` naming the fix, before any work: an unknown solver, option or schedule, an
adaptive solver, a config field no solver honours (``clip_sample``, ``thresholding``, ``invert_sigmas``,
``shift_terminal``, ``use_flow_sigmas``; a diffusers scheduler's config is read with its own defaults, so
``DDPMScheduler``'s default ``clip_sample=True`` is refused: pass ``clip_sample=False``), ``step`` with a
timestep that is not the next entry of ``timesteps``, or a sample whose shape is not the run's.
"""

from __future__ import annotations

import inspect
import math
import weakref
from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import BaseOutput

from samplekit.diffusers import conventions
from samplekit.diffusers.bridge import SolverThread, close_channel
from samplekit.diffusers.evaluations import Evaluations, record_evaluations
from samplekit.discrete import DiscreteVPSDE
from samplekit.errors import InvalidArgumentError, SamplekitError
from samplekit.plugins import get_registry
from samplekit.score import ScoreModel, to_eps_x0
from samplekit.sde import SDE, RectifiedFlowSDE
from samplekit.solver import Solver, SolverError, resolve_solver
from samplekit.timegrid import check_user_grid, make_grid

Tensor = torch.Tensor

#: diffusers' DDPM-family schedulers, whose configs this scheduler reads and writes (``compatibles``)
VP_COMPATIBLES = (
    "DDIMScheduler",
    "DDPMScheduler",
    "PNDMScheduler",
    "LMSDiscreteScheduler",
    "EulerDiscreteScheduler",
    "HeunDiscreteScheduler",
    "EulerAncestralDiscreteScheduler",
    "DPMSolverMultistepScheduler",
    "DPMSolverSinglestepScheduler",
    "KDPM2DiscreteScheduler",
    "KDPM2AncestralDiscreteScheduler",
    "DEISMultistepScheduler",
    "UniPCMultistepScheduler",
    "DPMSolverSDEScheduler",
)
FLOW_COMPATIBLES = ("FlowMatchEulerDiscreteScheduler",)
#: config fields that change the computation in ways no samplekit solver does: refused when set
UNHONOURED = {
    "clip_sample": "clips the x0 prediction at every step",
    "thresholding": "thresholds the x0 prediction at every step (dynamic thresholding)",
    "invert_sigmas": "inverts the flow sigmas (Mochi)",
    "shift_terminal": "stretches the flow sigmas to a terminal value",
    "use_flow_sigmas": "puts flow sigmas on a DDPM-family config",
}
#: the grid choices of diffusers configs, honoured as samplekit schedules when no schedule= is given
SIGMA_SCHEDULES = {"use_karras_sigmas": "karras", "use_exponential_sigmas": "exponential", "use_beta_sigmas": "beta"}


def source_class(config: dict):
    """The diffusers scheduler class a config comes from: its ``_class_name`` (a saved config), else the
    compatible scheduler whose constructor takes exactly the config's fields (``scheduler.config`` of a live
    scheduler carries no class name); None if neither says."""
    import diffusers

    name = config.get("_class_name")
    if name == "SamplekitScheduler":
        return SamplekitScheduler
    if name:
        return getattr(diffusers, name, None)
    fields = {k for k in config if not k.startswith("_")}
    for candidate in VP_COMPATIBLES + FLOW_COMPATIBLES:
        cls = getattr(diffusers, candidate, None)
        if cls is not None and set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"} == fields:
            return cls
    return None


@dataclass
class SamplekitSchedulerOutput(BaseOutput):
    """``prev_sample``: the next x the solver evaluates at (the final sample after the last call);
    ``pred_original_sample``: the x0 prediction of the output just given."""

    prev_sample: Tensor
    pred_original_sample: Tensor


@dataclass
class _Process:
    sde: SDE
    parametrization: str
    flow: bool
    shift: float | None  # the grid shift of a flow model (None: none)


class SamplekitScheduler(SchedulerMixin, ConfigMixin):
    """A samplekit solver as a diffusers scheduler (see the module docstring)."""

    config_name = "scheduler_config.json"  # type: ignore[assignment]
    _compatibles = list(VP_COMPATIBLES + FLOW_COMPATIBLES)
    order = 1

    @register_to_config
    def __init__(
        self,
        solver: str = "dpmpp_2m",
        solver_options: dict | None = None,
        schedule: str | None = None,
        schedule_options: dict | None = None,
        ts: list | None = None,
        source_scheduler: str | None = None,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.0001,
        beta_end: float = 0.02,
        beta_schedule: str = "linear",
        trained_betas: list | None = None,
        prediction_type: str = "epsilon",
        rescale_betas_zero_snr: bool = False,
        timestep_spacing: str = "linspace",
        steps_offset: int = 0,
        clip_sample: bool = False,
        thresholding: bool = False,
        use_flow_sigmas: bool = False,
        use_karras_sigmas: bool = False,
        use_exponential_sigmas: bool = False,
        use_beta_sigmas: bool = False,
        shift: float = 1.0,
        use_dynamic_shifting: bool = False,
        base_shift: float = 0.5,
        max_shift: float = 1.15,
        base_image_seq_len: int = 256,
        max_image_seq_len: int = 4096,
        time_shift_type: str = "exponential",
        invert_sigmas: bool = False,
        shift_terminal: float | None = None,
    ) -> None:
        fields = {
            "clip_sample": clip_sample,
            "thresholding": thresholding,
            "invert_sigmas": invert_sigmas,
            "shift_terminal": shift_terminal,
            "use_flow_sigmas": use_flow_sigmas,
            "use_karras_sigmas": use_karras_sigmas,
            "use_exponential_sigmas": use_exponential_sigmas,
            "use_beta_sigmas": use_beta_sigmas,
        }
        for name, what in UNHONOURED.items():
            if fields[name]:
                raise InvalidArgumentError(
                    f"the scheduler config has {name}={fields[name]!r}: it {what}, which no samplekit solver "
                    f"does; pass {name}={False if name != 'shift_terminal' else None} to from_config to drop it"
                )
        self.flow = bool(source_scheduler and source_scheduler.startswith("FlowMatch"))
        if prediction_type == "flow_prediction" and not self.flow:
            raise InvalidArgumentError(
                "prediction_type='flow_prediction' on a DDPM-family config: build the scheduler from the "
                "model's FlowMatchEulerDiscreteScheduler config (source_scheduler='FlowMatchEulerDiscreteScheduler')"
            )
        if time_shift_type not in ("exponential", "linear"):
            raise InvalidArgumentError(f"time_shift_type={time_shift_type!r} must be 'exponential' or 'linear'")
        self._solver_options = dict(solver_options or {})
        if self.flow:
            self._solver_options.setdefault("denoise_final", True)
        self._schedule = schedule or next((v for k, v in SIGMA_SCHEDULES.items() if fields[k]), None)
        self._schedule_options = dict(schedule_options or {})
        if self._schedule == "discrete":
            self._schedule_options.setdefault("spacing", timestep_spacing)
            self._schedule_options.setdefault("steps_offset", steps_offset)
        probe = self._new_solver()  # unknown solver / option / schedule: refused here, before any work
        caps = probe.capabilities()
        if caps.adaptive:
            raise SolverError(
                f"solver {solver!r} is adaptive: it picks its steps from error estimates as it runs, but a "
                "pipeline needs every network call's timestep before the first one; use a fixed-step solver "
                "(e.g. dpmpp_3m, unipc, heun, dpm_2)"
            )
        get_registry().get("schedule", probe.schedule)
        self.order = int(caps.nfe_per_step)
        self.solver_name = probe.name
        self._process_cache: _Process | None = None if (self.flow and use_dynamic_shifting) else self._process(None)
        self.init_noise_sigma = 1.0
        self.timesteps: Tensor | None = None
        self.sigmas: Tensor | None = None
        self.grid: Tensor | None = None  # the grid of model times the solver walks (float64)
        self.num_inference_steps: int | None = None
        self.evaluations: Evaluations | None = None
        self._step_index: int | None = None
        self._begin_index: int | None = None
        self._run: SolverThread | None = None
        self._finalizer: weakref.finalize | None = None

    # --- construction ---------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config=None, return_unused_kwargs=False, **kwargs):
        """``from_config(pipe.scheduler.config, solver=..., schedule=..., **options)``: keyword arguments that
        are not config fields are the solver's options (``eta=``, ``s_noise=``, ``order=`` ...).  A diffusers
        scheduler's config is read with that scheduler's defaults for the fields it left at their default."""
        config = dict(config or {})
        source = source_class(config)
        if source is not None and source is not cls:
            defaults = inspect.signature(source.__init__).parameters
            for key in config.pop("_use_default_values", []):
                if key in defaults and defaults[key].default is not inspect.Parameter.empty:
                    config[key] = defaults[key].default
            kwargs.setdefault("source_scheduler", source.__name__)
        keys = set(cls._get_init_keys(cls)) - {"self", "kwargs"}
        options = {k: kwargs.pop(k) for k in list(kwargs) if k not in keys and k != "pretrained_model_name_or_path"}
        if options:
            base = dict(kwargs.get("solver_options") or config.get("solver_options") or {})
            kwargs["solver_options"] = {**base, **options}
        return super().from_config(config, return_unused_kwargs=return_unused_kwargs, **kwargs)

    def _new_solver(self) -> Solver:
        options = dict(self._solver_options)
        if self._schedule is not None:
            options["schedule"] = self._schedule
        if self._schedule_options:
            options["schedule_options"] = self._schedule_options
        return resolve_solver(self.config["solver"], options)

    def _process(self, mu: float | None) -> _Process:
        """The model's process from the config (flow: with the shift, e^mu or mu when dynamic)."""
        config = dict(self.config)
        if not self.flow:
            sde = DiscreteVPSDE(conventions.alphas_cumprod_of(config))
            return _Process(sde, conventions.parametrization_of(config), False, None)
        if config["use_dynamic_shifting"]:
            if mu is None:
                raise InvalidArgumentError(
                    "this flow-matching config has use_dynamic_shifting=True: pass mu to "
                    "set_timesteps(n, mu=...) (the pipeline computes it from the image size)"
                )
            from diffusers import FlowMatchEulerDiscreteScheduler

            keys = ("num_train_timesteps", "use_dynamic_shifting", "time_shift_type")
            ref = FlowMatchEulerDiscreteScheduler.from_config({k: config[k] for k in keys})
            ref.set_timesteps(2, mu=mu)
            t_min = float(ref.sigmas[-2])
            shift = math.exp(mu) if config["time_shift_type"] == "exponential" else float(mu)
        else:
            t_min, shift = conventions.flow_t_min(config), float(config["shift"])
        return _Process(RectifiedFlowSDE(t_min=t_min), "flow", True, shift if shift != 1.0 else None)

    # --- the diffusers scheduler contract ---------------------------------------------------------------
    @property
    def compatibles(self):
        import diffusers

        names = FLOW_COMPATIBLES if self.flow else VP_COMPATIBLES
        return [getattr(diffusers, n) for n in names if hasattr(diffusers, n)]

    @property
    def step_index(self) -> int | None:
        return self._step_index

    @property
    def begin_index(self) -> int | None:
        return self._begin_index

    def set_begin_index(self, begin_index: int = 0) -> None:
        """Start at call ``begin_index`` of ``timesteps`` (img2img: ``t_start * order``); it must be the
        first call of a grid step."""
        self._begin_index = int(begin_index)

    def scale_model_input(self, sample: Tensor, timestep=None) -> Tensor:
        """The identity: the latents are the network's input x_t = alpha_t x0 + sigma_t eps."""
        return sample

    def set_timesteps(
        self, num_inference_steps: int | None = None, device=None, timesteps=None, sigmas=None, mu: float | None = None
    ) -> None:
        """The grid (n steps of the schedule, or ``ts=`` / ``timesteps=`` / ``sigmas=``) and the timesteps of the
        solver's network calls on it."""
        self.close()
        process = self._process_cache or self._process(mu)
        if sigmas is not None and process.flow:  # diffusers shifts given flow sigmas, and ends on the last
            given = torch.as_tensor(sigmas, dtype=torch.float64).flatten()
            given = given[given > 0]
            if process.shift is not None:
                given = process.shift * given / (1 + (process.shift - 1) * given)
            process = _Process(RectifiedFlowSDE(t_min=float(given[-1])), "flow", True, process.shift)
            sigmas = given  # already shifted: the grid itself
        self._current = process
        solver = self._new_solver()
        ts = self._grid(solver, process, num_inference_steps, timesteps, sigmas)
        self.evaluations = record_evaluations(solver, process.sde, process.parametrization, ts)
        self.grid = ts
        self.num_inference_steps = len(ts) - 1
        self.timesteps = self.timestep_of(self.evaluations.times).to(device=device)
        alpha, sigma = process.sde.marginal(self.evaluations.times)
        self.sigmas = torch.cat([sigma / alpha, sigma.new_zeros(1)]).to(torch.float32).to(device=device)
        self._step_index = self._begin_index = None

    def _grid(self, solver: Solver, process: _Process, n, timesteps, sigmas) -> Tensor:
        sde = process.sde
        grids = (("ts", self.config["ts"]), ("timesteps", timesteps), ("sigmas", sigmas))
        given = [name for name, v in grids if v is not None]
        if len(given) > 1:
            raise InvalidArgumentError(f"{' and '.join(given)} were all given; pass one grid")
        if self.config["ts"] is not None:
            ts = check_user_grid(self.config["ts"], sde, "ts")
            if n is not None and n != len(ts) - 1:
                raise InvalidArgumentError(
                    f"num_inference_steps={n} but the scheduler's ts= has {len(ts) - 1} steps; call the pipeline "
                    f"with num_inference_steps={len(ts) - 1}, or build the scheduler without ts="
                )
            return ts.to(torch.float64)
        if timesteps is not None:
            ts = self.time_of(torch.as_tensor(timesteps, dtype=torch.float64).flatten())
        elif sigmas is not None:
            s = torch.as_tensor(sigmas, dtype=torch.float64).flatten()
            s = s[s > 0]
            ts = s if process.flow else sde.t_from_log_snr(-torch.log(s))
        else:
            if n is None:
                raise InvalidArgumentError("set_timesteps needs num_inference_steps, timesteps= or sigmas=")
            model = ScoreModel(lambda x, t: x, sde, (1,), process.parametrization)
            model.schedule_options = {"shift": process.shift} if process.shift else {}  # type: ignore[attr-defined]
            return make_grid(solver, model, int(n))
        if float(ts[-1]) > sde.t_min * (1 + 1e-9):
            ts = torch.cat([ts, ts.new_tensor([sde.t_min])])
        return check_user_grid(ts, sde, "timesteps" if timesteps is not None else "sigmas")

    def timestep_of(self, t: Tensor) -> Tensor:
        """The network's timestep at model time t (float32): N t - 1 (DDPM family), N sigma (flow)."""
        sde = self._current.sde
        if self._current.flow:
            return (t * self.config["num_train_timesteps"]).to(torch.float32)
        assert isinstance(sde, DiscreteVPSDE)
        return sde.timestep(t).to(torch.float32)

    def time_of(self, timestep) -> Tensor:
        """Model time t of a network timestep (the inverse of ``timestep_of``), float64."""
        timestep = torch.as_tensor(timestep).to(torch.float64)
        if self._current_process().flow:
            return timestep / self.config["num_train_timesteps"]
        sde = self._current_process().sde
        assert isinstance(sde, DiscreteVPSDE)
        return sde.time_of(timestep)

    def _current_process(self) -> _Process:
        current = getattr(self, "_current", None) or self._process_cache
        if current is None:
            raise InvalidArgumentError("call set_timesteps(n, mu=...) first: the dynamic shift comes with mu")
        return current

    def add_noise(self, original_samples: Tensor, noise: Tensor, timesteps) -> Tensor:
        """x_t = alpha_t x0 + sigma_t noise at the model time of each timestep (img2img, inpainting)."""
        t = self.time_of(torch.as_tensor(timesteps).reshape(-1).cpu())
        alpha, sigma = self._current_process().sde.marginal(t)
        shape = (-1,) + (1,) * (original_samples.ndim - 1)
        alpha = alpha.to(original_samples).reshape(shape)
        sigma = sigma.to(original_samples).reshape(shape)
        return alpha * original_samples + sigma * noise.to(original_samples)

    def scale_noise(self, sample: Tensor, timestep, noise: Tensor | None = None) -> Tensor:
        """Flow-matching pipelines' img2img: x_sigma = (1 - sigma) x0 + sigma noise (= ``add_noise``)."""
        if noise is None:
            raise InvalidArgumentError("scale_noise(sample, timestep, noise) needs the noise")
        return self.add_noise(sample, noise, timestep)

    # --- the run -----------------------------------------------------------------------------------------
    def step(self, model_output: Tensor, timestep, sample: Tensor, generator=None, return_dict: bool = True):
        """Give the solver the network's output at (sample, timestep); returns the next x it evaluates at
        (``prev_sample``; after the last call the final sample) and the output's x0 prediction."""
        if self.timesteps is None or self.evaluations is None:
            raise InvalidArgumentError("call scheduler.set_timesteps(num_inference_steps) before step()")
        if self._step_index is None:
            self._step_index = self._begin_index or 0
        k = self._step_index
        self._check_call(k, model_output, timestep, sample, generator)
        try:
            if self._run is None:
                self._start(sample, k, generator)
            run = self._run
            assert run is not None
            if k == 0 and self.evaluations.leading:  # the solver's first call is elsewhere: this output is unused
                assert run.pending is not None
                prev = run.pending[0].clone()
            else:
                prev = run.advance(model_output, sample, generator)
            self._step_index = k + 1
            if run.pending is not None:
                self._check_planned(k + 1, run.pending[1])
        except BaseException:
            self.close()
            raise
        if run.finished:
            self._run = None
        x0 = self._x0(model_output, sample, self.evaluations.times[k])
        if not return_dict:
            return (prev, x0)
        return SamplekitSchedulerOutput(prev_sample=prev, pred_original_sample=x0)

    def _x0(self, output: Tensor, x: Tensor, t: Tensor) -> Tensor:
        """The x0 prediction of a network output at (x, t), by the model's parametrisation (``score.py``)."""
        sde = self._current.sde
        t = t.to(torch.float64)
        alpha, sigma = (v.to(x.dtype) for v in sde.marginal(t))
        d_alpha = d_sigma = None
        if self._current.parametrization == "flow":
            d_alpha, d_sigma = (v.to(x.dtype) for v in sde.marginal_derivative(t))
        return to_eps_x0(self._current.parametrization, output.to(x.dtype), x, alpha, sigma, d_alpha, d_sigma)[1]

    def _check_call(self, k: int, model_output, timestep, sample, generator) -> None:
        assert self.timesteps is not None
        if k >= len(self.timesteps):
            raise InvalidArgumentError(
                f"step() was called {k + 1} times but the solver makes {len(self.timesteps)} network calls on "
                "this grid; call the network once per entry of scheduler.timesteps, then set_timesteps again"
            )
        expected = float(self.timesteps[k])
        got = float(torch.as_tensor(timestep).reshape(-1)[0])
        if abs(got - expected) > 1e-4 * max(1.0, abs(expected)):
            where = (
                "is not in scheduler.timesteps"
                if not bool((self.timesteps.cpu() - got).abs().min() <= 1e-4 * max(1.0, abs(got)))
                else f"is not call {k}'s"
            )
            raise InvalidArgumentError(
                f"step() got timestep {got:g}, which {where} (call {k} is at timestep {expected:g}); call step "
                "with the entries of scheduler.timesteps in order, once each"
            )
        if not isinstance(sample, Tensor) or not isinstance(model_output, Tensor) or model_output.shape != sample.shape:
            raise InvalidArgumentError(
                f"step() got model_output of shape {tuple(getattr(model_output, 'shape', ()))} for a sample of shape "
                f"{tuple(getattr(sample, 'shape', ()))}; pass the network's output for these latents (after guidance)"
            )
        if self._run is not None and self._run.pending is not None and sample.shape != self._run.pending[0].shape:
            raise InvalidArgumentError(
                f"step() got a sample of shape {tuple(sample.shape)}, but this run's latents have shape "
                f"{tuple(self._run.pending[0].shape)}; pass the latents prev_sample returned (same batch and size)"
            )
        if isinstance(generator, list) and len(generator) != sample.shape[0]:
            raise InvalidArgumentError(
                f"generator is a list of {len(generator)} generators for {sample.shape[0]} samples; pass one "
                "generator, or exactly one per sample"
            )

    def _check_planned(self, k: int, t: Tensor) -> None:
        """The solver's call k is at the time the dry run planned (a fixed-step solver's times do not depend
        on x); a solver that breaks this would feed the pipeline the wrong timesteps."""
        assert self.evaluations is not None
        got = float(t.reshape(-1)[0])
        planned = float(self.evaluations.times[k]) if k < len(self.evaluations.times) else float("nan")
        if not abs(got - planned) <= 1e-5 * self._current.sde.T:
            self.close()
            raise SamplekitError(
                f"solver {self.solver_name!r} asked for the network at t={got:g} on call {k}, where its dry run "
                f"planned t={planned:g}: its evaluation times depend on the sample, so it cannot run as a "
                "scheduler; use another fixed-step solver"
            )

    def _start(self, sample: Tensor, k: int, generator) -> None:
        """Start the solver at call k from ``sample`` (k > 0: img2img, on the grid from that call's step)."""
        assert self.evaluations is not None and self.grid is not None
        step = max(self.evaluations.steps[k], 0)
        ts = self.grid[step:]
        if k > 0 and self.evaluations.first_of_step(step) != k:
            raise InvalidArgumentError(
                f"the run starts at call {k} of scheduler.timesteps, inside grid step {step} of solver "
                f"{self.solver_name!r}; start at the first call of a step (set_begin_index(t_start * order) "
                "with order = the solver's calls per step)"
            )
        solver = self._new_solver()
        if k > 0:
            tail = record_evaluations(solver, self._current.sde, self._current.parametrization, ts)
            want = self.evaluations.times[k:]
            if (
                tail.leading
                or len(tail.times) != len(want)
                or not torch.allclose(tail.times, want, rtol=1e-9, atol=1e-12)
            ):
                raise SamplekitError(
                    f"solver {self.solver_name!r} started at grid step {step} calls the network at other times "
                    "than the full grid's remaining calls (its first steps differ); call set_timesteps with "
                    "the img2img grid itself (timesteps= from the start time down)"
                )
            solver = self._new_solver()
        self._run = SolverThread(solver, self._current.sde, self._current.parametrization, sample, ts, generator)
        self._finalizer = weakref.finalize(self, close_channel, self._run.channel, self._run.thread)
        assert self._run.pending is not None
        self._check_planned(k + int(k == 0 and self.evaluations.leading), self._run.pending[1])

    def close(self) -> None:
        """Stop the running solver, if any (``set_timesteps`` does this before a new run)."""
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None
        self._run = None

    def __len__(self) -> int:
        return self.config["num_train_timesteps"]
