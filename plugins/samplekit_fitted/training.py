"""What the fitters share: the fitter base, a monotone grid parametrisation, the start grid, and Adam.

Grid.  An n-step grid T = t_0 > ... > t_n = t_min is parametrised by n free logits z (LD3, Tong et al.
2025, learns the times directly; here they are kept ordered by construction):

    t_i = T - (T - t_min) sum_{j < i} softmax(z)_j,   z_j = log(t_j - t_{j+1}) at the start,

so every z gives a strictly decreasing grid with exact end points.

Start.  Each method starts from its own defaults on the best published grid for its solver, chosen on
the fit set among ``START_SCHEDULES`` (the solver's default, karras, logsnr, uniform, ays, kl_optimal);
that start is the baseline ``sk.fit_solver`` compares the fit against.

Fit.  Adam on the full fit batch, the loss of ``samplekit.fitted.fit_loss``; the best parameters seen
are kept (a step that raises the loss or gives NaN is not returned); it stops at ``iters`` or the cap.
"""

from __future__ import annotations

import copy
import math
from typing import ClassVar

import torch

from samplekit.fitted import Cap, fit_loss

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

    best = (math.inf, None, None)
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
        with torch.no_grad():
            loss = float(fit_loss(model, solver, ts, x_T, teacher))
        if loss < best[0]:
            best = (loss, probe.schedule, ts)
    if best[1] is None:
        raise RuntimeError(f"no published schedule gives a {n_steps}-step grid on {model.sde!r}")
    return best[1], best[2]


def adam(params: dict[str, Tensor], loss_fn, cap: Cap, calls: int, iters: int, lr: float) -> tuple[dict, list]:
    """Minimise loss_fn() over params (leaf tensors); returns the best params seen and the loss history."""
    for p in params.values():
        p.requires_grad_(True)
    opt = torch.optim.Adam(list(params.values()), lr=lr)
    best, best_params, history = math.inf, {k: v.detach().clone() for k, v in params.items()}, []
    for _ in range(iters):
        if not cap.allows(calls):
            break
        opt.zero_grad()
        with torch.enable_grad():
            loss = loss_fn()
        value = float(loss.detach())
        history.append(value)
        if not math.isfinite(value):
            break
        if value < best:
            best, best_params = value, {k: v.detach().clone() for k, v in params.items()}
        loss.backward()
        opt.step()
    return best_params, history
