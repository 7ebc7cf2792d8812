"""Time grids for fixed-step solvers: the registered schedule, its options, a user's grid, a start time.

* ``make_grid(solver, model, n_steps, t_max=None)``: the solver's schedule on [t_min, t_max]
  (t_max = T by default; img2img starts below it), with the ``shift`` schedule option.
* ``shift`` (SD3 / Flux, Esser et al. 2024, "Scaling rectified flow transformers", eq. 23): the
  noise-to-signal ratio sigma_t / alpha_t of every grid time is multiplied by ``shift``, i.e.
  lambda' = lambda - log(shift) and t' = sde.t_from_log_snr(lambda').  On ``rectified_flow``
  (sigma_t = t) that is exactly t' = shift t / (1 + (shift - 1) t); on any other SDE it is the same
  move in log-SNR (shift > 1 spends more steps at high noise).  The ends stay pinned to t_max and t_min.
  A model loaded from a flow-matching scheduler carries its ``shift`` in ``model.schedule_options``; it
  applies unless the solver's ``schedule_options`` give one (``shift=1.0`` turns it off).
* Where alpha_T = 0 (rectified flow: log-SNR(T) = -inf) a schedule defined in log-SNR or in
  sigma / alpha (``karras``, ``logsnr``) has no finite first point: it is built on [t_min, T_c] with
  log-SNR(T_c) = -log-SNR(t_min) (the range mirrored about SNR = 1, as wide as VP's), and its first
  point is then moved to T, so the first step starts from the prior itself.
* ``check_user_grid``: a strictly decreasing, finite, 1-D grid of model times inside [t_min, T]; with
  ``final_zero=True`` its last entry may be exactly 0, sigma = 0 (k-diffusion's sigma lists end so),
  on an SDE whose sigma_0 is 0.
"""

from __future__ import annotations

import math

import torch

from samplekit.errors import ArgumentTypeError, InvalidArgumentError
from samplekit.plugins import get_registry
from samplekit.sde import SDE
from samplekit.solver import Solver, SolverError

Tensor = torch.Tensor


def _decreasing(ts: Tensor) -> bool:
    return bool(torch.isfinite(ts).all()) and bool((ts[1:] < ts[:-1]).all())


def make_grid(solver: Solver, model, n_steps: int, t_max: float | None = None) -> Tensor:
    """The solver's schedule with ``n_steps`` steps from t_max (default T) down to t_min (float64)."""
    options = dict(solver.schedule_options)
    # a loaded model may carry its training shift (SD3's FlowMatchEuler shift=3.0): the default unless given
    shift = options.pop("shift", getattr(model, "schedule_options", {}).get("shift"))
    sde = model.sde if t_max is None else model.sde.restricted(t_max)
    schedule = get_registry().get("schedule", solver.schedule).factory
    _check_schedule_options(solver.schedule, schedule, options)
    ts = schedule(sde, n_steps, **options)
    if not _decreasing(ts) and sde.alpha_T_is_zero:
        lam_min = sde.log_snr(torch.tensor(sde.t_min, dtype=torch.float64))
        t_cap = float(sde.t_from_log_snr(-lam_min))
        ts = schedule(sde.restricted(t_cap), n_steps, **options).clone()
        ts[0] = sde.T
    if ts.shape != (n_steps + 1,) or not _decreasing(ts):
        raise SolverError(
            f"schedule {solver.schedule!r} returned a grid that is not strictly decreasing "
            f"with {n_steps + 1} points on {sde!r}"
        )
    if shift is not None:
        ts = shifted(ts, sde, shift)
    return ts


def _check_schedule_options(name: str, schedule, options: dict) -> None:
    """Every schedule option a keyword the schedule takes (besides ``shift``, applied here)."""
    import inspect

    try:
        params = inspect.signature(schedule).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    takes = [p for p in list(params)[2:] if params[p].kind in (params[p].KEYWORD_ONLY, params[p].POSITIONAL_OR_KEYWORD)]
    unknown = sorted(set(options) - set(takes))
    if unknown:
        raise SolverError(
            f"schedule_options {', '.join(map(repr, unknown))} not understood by schedule {name!r}; it takes "
            f"{', '.join(map(repr, [*takes, 'shift'])) or 'only shift'}"
        )


def shifted(ts: Tensor, sde: SDE, shift) -> Tensor:
    """The grid with sigma/alpha multiplied by ``shift`` (t' = shift t / (1 + (shift - 1) t) on rectified flow);
    the first and last points stay where they are."""
    if isinstance(shift, bool) or not isinstance(shift, (int, float)) or not math.isfinite(shift) or shift <= 0:
        raise SolverError(f"schedule option shift={shift!r} must be a positive number (SD3 uses 3.0; 1 = no shift)")
    lam = sde.log_snr(ts) - math.log(shift)
    out = sde.t_from_log_snr(lam).to(ts.dtype).clamp(sde.t_min, sde.T)
    out[0], out[-1] = ts[0], ts[-1]
    if not _decreasing(out):
        raise SolverError(
            f"shift={shift} squeezes the grid of {len(ts) - 1} steps into repeated times on {sde!r}; "
            "use a shift closer to 1 or fewer steps"
        )
    return out


def check_user_grid(ts, sde: SDE, argument: str = "ts", final_zero: bool = False) -> Tensor:
    """A user's grid of model times, checked: 1-D, at least 2 points, finite, strictly decreasing, in [t_min, T]
    (with ``final_zero``, the last point may be 0 where sigma_0 = 0: the step onto the data)."""
    if not isinstance(ts, Tensor):
        try:
            ts = torch.as_tensor(ts, dtype=torch.float64)
        except (TypeError, ValueError):
            raise ArgumentTypeError(
                f"{argument} must be a 1-D tensor of model times, e.g. torch.linspace(T, t_min, 11)"
            ) from None
    if ts.is_complex() or not ts.is_floating_point() and ts.dtype != torch.int64:
        raise ArgumentTypeError(f"{argument} must hold real model times (a floating-point tensor)")
    if ts.ndim != 1 or ts.numel() < 2:
        raise InvalidArgumentError(
            f"{argument} has shape {tuple(ts.shape)}; pass a 1-D grid of at least 2 times, from the "
            "start time down to the end time"
        )
    if not torch.isfinite(ts).all():
        raise InvalidArgumentError(f"{argument} holds NaN or Inf; pass finite model times in [t_min, T]")
    if not bool((ts[1:] < ts[:-1]).all()):
        raise InvalidArgumentError(f"{argument} must be strictly decreasing (from noise at large t to data at small t)")
    if final_zero and bool(ts[-1] == 0):
        check_zero_end(sde, argument)
        sde.check_time(ts[:-1], argument)
    else:
        sde.check_time(ts, argument)
    return ts


def ends_at_zero(ts: Tensor) -> bool:
    """Whether a grid's last time is exactly 0 (sigma = 0: k-diffusion's final step to the data)."""
    return bool(ts[-1] == 0)


def check_zero_end(sde: SDE, argument: str = "ts") -> None:
    """A grid may end at t = 0 only where the process has no noise left there (sigma_0 = 0, alpha_0 > 0)."""
    alpha, sigma = sde.marginal(torch.zeros((), dtype=torch.float64))
    if not (bool(sigma == 0) and bool(alpha > 0)):
        raise InvalidArgumentError(
            f"{argument} ends at 0, but {sde!r} has sigma_0 = {float(sigma):g} there (a final 0 means sigma = 0, "
            f"the data, as k-diffusion's sigma lists end); end the grid at t_min = {sde.t_min:g} instead"
        )
