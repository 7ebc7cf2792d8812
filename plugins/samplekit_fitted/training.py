"""What the fitters share: the fitter base, a monotone grid parametrisation, the start grid, and Adam.

Grid.  An n-step grid T = t_0 > ... > t_n = t_min is parametrised by n free logits z (LD3, Tong et al.
2025, learns the times directly; here they are kept ordered by construction):

    t_i = T - (T - t_min) sum_{j < i} softmax(z)_j,   z_j = log(t_j - t_{j+1}) at the start,

so every z gives a strictly decreasing grid with exact end points.

Start.  Each method starts from its own defaults on the best published grid for its solver, chosen on
the fit set among ``START_SCHEDULES`` (the solver's default, karras, logsnr, uniform, ays, kl_optimal);
that start is the baseline ``sk.fit_solver`` compares the fit against.

Fit.  Adam on minibatches of the fit set (the loss of ``samplekit.fitted.fit_loss``); the whole set's
loss is checked every few steps and the best parameters by it are kept (a step that raises the loss or
gives NaN is never returned); it stops at ``iters``, at a non-finite loss, or at the cap.  The error is
heavy-tailed (a few x_T land in another mode), so a larger fit set generalises better than more steps.
"""

from __future__ import annotations

import copy
import math
from typing import ClassVar

import torch

from samplekit.fitted import Cap, fit_loss
from samplekit.score import NonFiniteError

Tensor = torch.Tensor

START_SCHEDULES = ("default", "karras", "logsnr", "uniform", "ays", "kl_optimal")


class Fitter:
    """Base of a fitting method: typed options in ``__init__``; ``fit(...) -> FitResult``; ``build(fitted)``."""

    name: ClassVar[str] = "fitter"

    def options(self) -> dict:
        return dict(vars(self))


def logits_of(ts: Tensor) -> Tensor:
    return torch.log(ts[:-1] - ts[1:]).detach().clone()


def grid_of(z: Tensor, T: float, t_min: float) -> Tensor:
    frac = torch.cumsum(torch.softmax(z, 0), 0)
    inner = T - (T - t_min) * frac[:-1]
    return torch.cat([torch.tensor([T], dtype=z.dtype), inner, torch.tensor([t_min], dtype=z.dtype)])


def start_grid(model, solver, n_steps: int, x_T: Tensor, teacher: Tensor, cap: Cap, calls: int):
    """(name, grid) of the published schedule with the lowest fit loss for ``solver`` (n_steps steps)."""
    from samplekit.timegrid import make_grid

    best: tuple[float, str | None, Tensor | None] = (math.inf, None, None)
    for name in START_SCHEDULES:
        probe = copy.copy(solver)
        probe.schedule = solver.schedule if name == "default" else name
        probe.schedule_options = {}
        try:
            ts = make_grid(probe, model, n_steps)
        except Exception:  # a schedule that cannot serve this SDE / step count is skipped
            continue
        if best[1] is not None and not cap.allows(calls):
            break
        try:
            with torch.no_grad():
                loss = float(fit_loss(model, solver, ts, x_T, teacher))
        except NonFiniteError:
            continue
        if loss < best[0]:
            best = (loss, probe.schedule, ts)
    if best[1] is None:
        raise RuntimeError(f"no published schedule gives a {n_steps}-step grid on {model.sde!r}")
    return best[1], best[2]


def adam(
    params: dict[str, Tensor],
    loss_fn,
    cap: Cap,
    calls: int,
    iters: int,
    lr: float,
    num_fit: int,
    batch: int = 128,
    check_every: int = 25,
    seed: int = 0,
) -> tuple[dict, list]:
    """Minimise ``loss_fn(rows)`` over params (leaf tensors) by Adam on minibatches of ``batch`` rows of the
    fit set; every ``check_every`` steps (and at the end) the whole fit set's loss is taken without a graph
    and the best parameters by it are returned, with the history of those whole-set losses."""
    for p in params.values():
        p.requires_grad_(True)
    opt = torch.optim.Adam(list(params.values()), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    best, best_params, history = math.inf, None, []

    def check() -> bool:
        nonlocal best, best_params
        try:
            with torch.no_grad():
                value = float(loss_fn(None))
        except NonFiniteError:  # the solver met NaN/Inf: a diverged point, never kept
            value = math.nan
        history.append(value)
        if value < best:
            best, best_params = value, {k: v.detach().clone() for k, v in params.items()}
        return math.isfinite(value)

    full = num_fit * calls // max(min(batch, num_fit), 1)
    for it in range(iters):
        if it % check_every == 0 and (not cap.allows(full) or not check()):
            break
        if not cap.allows(calls):
            break
        rows = None if batch >= num_fit else torch.randperm(num_fit, generator=gen)[:batch]
        opt.zero_grad()
        try:
            with torch.enable_grad():
                loss = loss_fn(rows)
        except NonFiniteError:
            break
        if not bool(torch.isfinite(loss.detach())):
            break
        loss.backward()
        opt.step()
    else:
        check()
    if best_params is None:
        best_params = {k: v.detach().clone() for k, v in params.items()}
    return best_params, history
