"""AMED-Solver (Zhou, Chen, Wang, Gu & Liu, CVPR 2024, "Fast ODE-based sampling for diffusion models in
around 5 steps"): per step an intermediate level r_i and a scale c_i, fitted to a teacher.

Parameters (``directions.ParallelDirections`` with K = 1): r_i in (0, 1) (the paper's s_i =
t_i^{r_i} t_{i+1}^{1 - r_i}, here r measured from t_i), c_i > 0 (the paper's scaling factor); with
``learn_grid`` also the grid (LD3-style logits, ``training.grid_of``).  The budget is spent as the
paper does: the analytical first step (AFS) saves one call when alpha_T ~ 0, steps take 2 calls, and
an odd remainder goes to a single Euler last step (``directions.plan``).

Departures from the paper: AMED predicts (r_i, c_i) per sample with a small network on the U-Net's
bottleneck feature; here they are per-step constants shared by all samples (what AMED-Plugin's ablation
calls the non-adaptive variant), since the exact targets have no bottleneck.  The loss is the global
error at t_min against a tight dopri5 solve (the paper matches the teacher at every step on a finer
grid); ``learn_grid=True`` (the default) also moves the grid, which the paper keeps at the polynomial /
logSNR schedule (``learn_grid=False`` is the paper's setting).
"""

from __future__ import annotations

import torch

from samplekit.fitted import FitResult, fit_loss
from samplekit_fitted.directions import ParallelDirections, level, plan
from samplekit_fitted.training import Fitter, adam, grid_of, logits_of, start_grid


class AMED(Fitter):
    """AMED-Solver: intermediate time and scale per step (and the grid), fitted to a dopri5 teacher."""

    name = "amed"
    directions = 1

    def __init__(self, learn_grid: bool = True, iters: int = 300, lr: float = 0.05, batch: int = 128) -> None:
        self.learn_grid, self.iters, self.lr, self.batch = bool(learn_grid), int(iters), float(lr), int(batch)

    def initial(self, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        k = self.directions
        r = (
            torch.full((steps, k), 0.5, dtype=torch.float64)
            if k == 1
            else torch.linspace(0, 1, k + 2)[1:-1].repeat(steps, 1)
        )
        return r.to(torch.float64), torch.full((steps, k), 1.0 / k, dtype=torch.float64)

    def fit(self, model, nfe, x_T, teacher, cap):
        sde = model.sde
        alpha_zero = bool(sde.alpha_T_is_zero)
        afs_ok = not alpha_zero and float(level(sde, torch.tensor(sde.T, dtype=torch.float64))) > 10
        steps, afs, single = plan(nfe, self.directions, alpha_zero, afs_ok)
        r0, w0 = self.initial(steps)
        start = ParallelDirections(r0, w0, None, afs, single)
        name, ts0 = start_grid(model, start, steps + alpha_zero, x_T, teacher, cap, nfe)
        params = {"a": torch.logit(r0), "b": torch.log(w0), "g": torch.zeros(steps, dtype=torch.float64)}
        if self.learn_grid:
            params["z"] = logits_of(ts0)

        def solver_of(p):
            return ParallelDirections(torch.sigmoid(p["a"]), torch.softmax(p["b"], 1), torch.exp(p["g"]), afs, single)

        def loss(rows):
            ts = grid_of(params["z"], sde.T, sde.t_min) if self.learn_grid else ts0
            return fit_loss(model, solver_of(params), ts, x_T, teacher, rows)

        best, history = adam(params, loss, cap, nfe, self.iters, self.lr, x_T.shape[0], self.batch)
        solver = solver_of(best)
        ts = grid_of(best["z"], sde.T, sde.t_min) if self.learn_grid else ts0
        fields = {"afs": afs, "single_last": single}
        return FitResult(
            "parallel_directions",
            {"r": solver.r.tolist(), "w": solver.w.tolist(), "c": solver.c.tolist(), **fields},
            ts.tolist(),
            f"{self.name} defaults on {name}",
            {"r": r0.tolist(), "w": w0.tolist(), "c": [1.0] * steps, **fields},
            ts0.tolist(),
            {"iterations": len(history), "start_loss": history[0] if history else None},
        )

    @classmethod
    def build(cls, fitted):
        p = fitted.params
        return ParallelDirections(p["r"], p["w"], p["c"], p["afs"], p["single_last"])
