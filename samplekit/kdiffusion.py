"""samplekit's solvers as k-diffusion sampler functions (for k-diffusion, ComfyUI and A1111-style hosts).

``sampler(name, **options)`` returns ``fn(model, x, sigmas, extra_args=None, callback=None, disable=None,
**kwargs)``, the signature of k-diffusion's ``sample_*`` functions, usable wherever one of them is (ComfyUI's
``KSAMPLER`` calls exactly this form).  In k-diffusion's convention ``model(x, sigma, **extra_args)`` is a
denoiser D(x, sigma) ~ E[x0 | x = x0 + sigma eps] with sigma of shape (batch,), so x is the noisy sample
at noise level sigma (the EDM SDE: alpha = 1, sigma_t = t, k-diffusion's sigma = samplekit's time).

The function walks the given ``sigmas`` (decreasing; a final 0 is the step onto the data, taken as
k-diffusion does: ``samplekit.sampling.step_to_zero``, or the solver's own step where it declares
``steps_to_zero``) through samplekit's core loop, with the model seen as ``EDMSDE(sigma_min, sigma_max)``
spanning the list.  ``sample_dpm_fast``, which k-diffusion calls with (sigma_min, sigma_max, n), runs as
ComfyUI runs it from a list (``SPAN_SAMPLERS``).  A k-diffusion name (``"sample_dpmpp_2m"``) selects
k-diffusion's conventions (``Solver.alias_options``) and gives k-diffusion's numbers; samplekit's own
names (``"dpmpp_2m"``) give ``sk.sample(..., ts=sigmas)``'s.  After each step ``callback`` receives k-diffusion's dict
``{"x", "i", "sigma", "sigma_hat", "denoised"}`` with x the sample the step started from.

Randomness: ``noise_sampler=`` (k-diffusion's ``noise_sampler(sigma, sigma_next)``) gives a stochastic
solver's draws, one per step (``dpmpp_sde``'s two draws are read from it as the Brownian increments
k-diffusion asks for); otherwise the draws come from samplekit's seeded noise with ``seed=`` (a sampler
option), else ``extra_args["seed"]`` (ComfyUI passes one), else a seed drawn from torch's global
generator (so ``torch.manual_seed`` fixes it, as it fixes k-diffusion's ``randn_like``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch

from samplekit.errors import InvalidArgumentError, SamplekitError
from samplekit.noise import NoiseSource
from samplekit.options import OptionError, check_options
from samplekit.plugins import get_registry
from samplekit.sampling import grid_plan, run_grid
from samplekit.score import ScoreModel
from samplekit.sde import EDMSDE
from samplekit.solver import Solver, StepInfo, build_solver
from samplekit.timegrid import check_user_grid, ends_at_zero, make_grid

Tensor = torch.Tensor

#: k-diffusion samplers called as ``sample(model, x, sigma_min, sigma_max, n)``, not on a list: from a list they
#: run as ComfyUI's ``KSAMPLER`` runs them, sigma_max = sigmas[0], sigma_min = the last positive sigma, n = the
#: number of steps of the list as the budget of calls (the solver's own grid in between)
SPAN_SAMPLERS = ("sample_dpm_fast",)
#: solver options that choose the grid, which the host's sigmas fix instead
HOST_GRID = ("schedule", "schedule_options")


class KDiffusionSamplerError(SamplekitError, ValueError):
    """A k-diffusion sampler function cannot be built or called as asked."""


def sampler(name: str, seed: int | None = None, **options) -> Callable[..., Tensor]:
    """The k-diffusion sampler function of solver ``name`` (any registered name or alias) with ``options``.

    Unknown names and options and adaptive solvers are refused here, before any sampling."""
    info = get_registry().get("solver", name)
    factory = info.factory
    if not (isinstance(factory, type) and issubclass(factory, Solver)):
        raise KDiffusionSamplerError(f"solver {name!r} is not a samplekit Solver class; it cannot run on sigmas")
    _refuse_grid_options(name, options)
    probe = build_solver(factory, name, options)  # unknown or ill-typed options are refused here
    if probe.capabilities().adaptive:
        raise KDiffusionSamplerError(
            f"solver {name!r} is adaptive: it chooses its own steps and cannot walk a host's sigmas; "
            "pick a fixed-step solver (see `samplekit list solver`)"
        )
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise KDiffusionSamplerError(f"seed={seed!r} must be an int (or None: extra_args['seed'] or torch's RNG)")

    @torch.no_grad()
    def sample(model, x, sigmas, extra_args=None, callback=None, disable=None, **kwargs) -> Tensor:
        noise_sampler = kwargs.pop("noise_sampler", None)
        call_options = _checked_call_options(factory, name, kwargs)
        solver = build_solver(factory, name, {**options, **call_options})
        ts = _checked_sigmas(sigmas, x)
        if solver.denoise_final and ends_at_zero(ts):
            raise KDiffusionSamplerError(
                "denoise_final=True with sigmas ending at 0: the last step already lands on the data; drop it"
            )
        extra = dict(extra_args or {})
        score_model = _as_score_model(model, extra, ts, x)
        if name in SPAN_SAMPLERS:  # k-diffusion's (sigma_min, sigma_max, n) form, read from the list as ComfyUI does
            plan = solver.plan(len(ts) - 1)
            ts = make_grid(solver, score_model, plan.n_steps)
        else:
            plan = grid_plan(solver, ts)
        noise = _noise_source(noise_sampler, solver, ts, x, _seed(seed, extra))
        # the callback's sigma: the host's own list entry (its dtype and device), or the walked grid's
        walked = sigmas if isinstance(sigmas, Tensor) and name not in SPAN_SAMPLERS else ts
        start = x
        last = {"x": x}

        def report(info: StepInfo) -> None:
            if isinstance(noise, NoiseSamplerSource):
                noise.next_step()
            if callback is not None:
                sigma = walked[info.step]
                callback(
                    {"x": last["x"], "i": info.step, "sigma": sigma, "sigma_hat": sigma, "denoised": info.denoised}
                )
            last["x"] = info.x

        solver.check_sde(score_model.sde)
        return run_grid(solver, score_model, start, ts, noise, plan, not disable, report)

    sample.__name__ = f"sample_{info.name}"
    sample.__doc__ = f"samplekit solver {info.name!r} ({name!r}, options {options}) as a k-diffusion sampler."
    return sample


def _refuse_grid_options(name: str, options: dict) -> None:
    """The host gives the sigmas: a schedule option, or a final denoise past the list's final 0, has no place."""
    given = sorted(set(options) & set(HOST_GRID))
    if given:
        raise KDiffusionSamplerError(
            f"sampler {name!r}: option {', '.join(given)} does not apply, the host's sigmas are the grid; "
            "drop it (build the sigmas with the schedule you want, e.g. samplekit.schedules)"
        )


def _checked_call_options(factory: type, name: str, kwargs: dict) -> dict:
    _refuse_grid_options(name, kwargs)
    try:
        return check_options(factory, f"sampler {name!r}", kwargs)
    except OptionError as exc:
        raise KDiffusionSamplerError(f"{exc} (or noise_sampler=, k-diffusion's)") from None


def _checked_sigmas(sigmas, x: Tensor) -> Tensor:
    """The sigma list as float64 model times of the EDM SDE (a final 0 kept: the step onto the data)."""
    if not isinstance(sigmas, Tensor):
        sigmas = torch.as_tensor(sigmas, dtype=torch.float64)
    if not isinstance(x, Tensor) or x.ndim < 1:
        raise InvalidArgumentError("x must be a batch tensor (batch, ...) of noisy samples at sigmas[0]")
    ts = sigmas.detach().to(device="cpu", dtype=torch.float64)  # the grid lives on the host, as make_grid's
    if ts.ndim != 1 or ts.numel() < 2:
        raise InvalidArgumentError(
            f"sigmas has shape {tuple(ts.shape)}; pass a 1-D list of at least 2 noise levels, largest first "
            "(e.g. k-diffusion's get_sigmas_karras(n, sigma_min, sigma_max))"
        )
    positive = ts[:-1] if bool(ts[-1] == 0) else ts
    if not bool((positive > 0).all()):
        raise InvalidArgumentError("sigmas must be positive except a final 0 (the step onto the data)")
    return check_user_grid(ts, _span_sde(ts), argument="sigmas", final_zero=True)


def _span_sde(ts: Tensor) -> EDMSDE:
    positive = ts[:-1] if ends_at_zero(ts) else ts
    return EDMSDE(sigma_min=float(positive[-1]), sigma_max=float(positive[0]))


def _as_score_model(model, extra: dict, ts: Tensor, x: Tensor) -> ScoreModel:
    """The host's denoiser with its extra_args bound, as a samplekit model on EDMSDE spanning the sigmas."""
    if not callable(model):
        raise InvalidArgumentError(f"model={model!r} must be a k-diffusion denoiser model(x, sigma, **extra_args)")
    from samplekit_loaders.denoiser_loader import DenoiserNet

    def denoiser(y: Tensor, sigma: Tensor) -> Tensor:
        return model(y, sigma, **extra)

    sde = _span_sde(ts)
    return ScoreModel(DenoiserNet(denoiser, sde), sde, tuple(x.shape[1:]), "x0", name="denoiser")


def _seed(seed: int | None, extra: dict) -> int:
    if seed is not None:
        return seed
    given = extra.get("seed")
    if isinstance(given, int) and not isinstance(given, bool):
        return given
    return int(torch.randint(0, 2**62, (), dtype=torch.int64))


def _noise_source(noise_sampler, solver: Solver, ts: Tensor, x: Tensor, seed: int) -> NoiseSource:
    if noise_sampler is None:
        return NoiseSource(seed, x.shape[0], device=x.device)
    if not callable(noise_sampler) or len(inspect.signature(noise_sampler).parameters) < 2:
        raise KDiffusionSamplerError("noise_sampler must be callable as noise_sampler(sigma, sigma_next) -> noise")
    return NoiseSamplerSource(
        noise_sampler, ts, x, brownian_ratio=getattr(solver, "r", None) if solver.name == "dpmpp_sde" else None
    )


class NoiseSamplerSource(NoiseSource):
    """samplekit's noise drawn from a k-diffusion ``noise_sampler(sigma, sigma_next)``: one draw per step,
    called with the step's (sigma_i, sigma_{i+1}).

    ``dpmpp_sde`` draws twice a step, w_1 and w_2, independent, and combines them into the Brownian
    increments over [s_m, s_t] and [s_{i+1}, s_t] (s_m = s_t^(1-r) s_{i+1}^r); from a noise_sampler those are
    what k-diffusion asks for, so w_1 = ns(s_t, s_m) and w_2 is read back from ns(s_t, s_{i+1}) =
    (sqrt(s_t - s_m) w_1 + sqrt(s_m - s_{i+1}) w_2) / sqrt(s_t - s_{i+1}).  Any other second draw within a
    step is refused (a Brownian noise_sampler would repeat itself)."""

    def __init__(self, noise_sampler, ts: Tensor, x: Tensor, brownian_ratio: float | None = None) -> None:
        super().__init__(0, x.shape[0], device=x.device)
        self.noise_sampler, self.ts, self.brownian_ratio = noise_sampler, ts, brownian_ratio
        self.step, self.in_step = 0, 0
        self.w1: Any = None
        self.shape = tuple(x.shape)

    def next_step(self) -> None:
        self.step, self.in_step, self.w1 = self.step + 1, 0, None

    def randn(self, shape, dtype: torch.dtype = torch.float32) -> Tensor:
        if (self.num_samples, *tuple(shape)) != self.shape:
            raise KDiffusionSamplerError(
                f"the solver asked for noise of shape {(self.num_samples, *tuple(shape))}; a k-diffusion "
                f"noise_sampler gives {self.shape}: drop noise_sampler= (samplekit's seeded draws are used)"
            )
        s_t, s_next = self.ts[self.step], self.ts[self.step + 1]
        self.in_step += 1
        if self.in_step == 1 and self.brownian_ratio is None:
            return self._call(s_t, s_next, dtype)
        if self.brownian_ratio is None or self.in_step > 2:
            raise KDiffusionSamplerError(
                f"the solver draws noise {self.in_step} times in step {self.step}; a k-diffusion noise_sampler "
                "gives one increment per step: drop noise_sampler= (samplekit's seeded draws are used)"
            )
        s_m = s_t ** (1 - self.brownian_ratio) * s_next**self.brownian_ratio
        if self.in_step == 1:
            self.w1 = self._call(s_t, s_m, dtype)
            return self.w1
        z = self._call(s_t, s_next, dtype)
        return (z * (s_t - s_next).sqrt() - self.w1 * (s_t - s_m).sqrt()) / (s_m - s_next).sqrt()

    def _call(self, sigma: Tensor, sigma_next: Tensor, dtype: torch.dtype) -> Tensor:
        z = self.noise_sampler(sigma, sigma_next)
        if not isinstance(z, Tensor) or tuple(z.shape) != self.shape:
            raise KDiffusionSamplerError(
                f"noise_sampler returned {getattr(z, 'shape', type(z))}; it must give {self.shape}"
            )
        return z.to(dtype=dtype, device=self.device)

    def randn_like(self, x: Tensor) -> Tensor:
        return self.randn(x.shape[1:], dtype=x.dtype)

    def integer_seed(self) -> int:
        raise KDiffusionSamplerError(
            "this solver needs an integer seed for a library's own noise; drop noise_sampler= "
            "(samplekit's seeded draws are used)"
        )


__all__ = ["sampler", "KDiffusionSamplerError", "NoiseSamplerSource"]
