"""LD3 (Tong, Hoang, Liu, Van den Broeck & Niepert, ICLR 2025, "Learning to discretize denoising diffusion
ODEs"): the time grid of a solver, learned by back-propagating the global error through the solver.

Parameters: the n grid logits of ``training.grid_of`` (n = the solver's steps for the budget).  By default
the solver is an existing one (``base``, default ``unipc``) with its own coefficients, so the fitted
sampler is that solver on the learned grid.  ``coefficients=True`` also fits per-step weights: the solver
is then ``multistep.LearnedMultistep`` of ``order`` (started from iPNDM's Adams-Bashforth weights, with
AMED's analytical first step where alpha_T ~ 0, so N calls walk N + 1 steps) and its b_im are learned
with the grid; this is the "grid + per-step coefficients" family of Bespoke solvers (Shaul et al. 2023)
and PAS, written as one multistep rule.

Departures: LD3's soft teacher loss lets each student start x'_T move in a ball around x_T (its
ablation: soft beats the hard MSE when the grid cannot fit every x_T); here the loss is the hard
end-point MSE on the fit set, and the grid is parametrised in t by a softmax of increments (LD3 uses
unconstrained times, sorted).
"""

from __future__ import annotations

import torch

from samplekit.fitted import FitResult, fit_loss
from samplekit.solver import resolve_solver
from samplekit_fitted.directions import level
from samplekit_fitted.multistep import LearnedMultistep, adams_bashforth
from samplekit_fitted.training import Fitter, adam, grid_of, logits_of, start_grid


class LD3(Fitter):
    """LD3: a learned time grid for a base solver (default ``unipc``), optionally with per-step weights."""

    name = "ld3"

    def __init__(
        self,
        base: str = "unipc",
        coefficients: bool = False,
        order: int = 3,
        iters: int = 300,
        lr: float = 0.05,
        batch: int = 128,
    ) -> None:
        resolve_solver(base, {})  # an unknown name fails here, listing close names
        if isinstance(order, bool) or order not in (1, 2, 3, 4):
            raise TypeError(f"order={order!r} must be 1, 2, 3 or 4")
        self.base, self.coefficients, self.order = str(base), bool(coefficients), int(order)
        self.iters, self.lr, self.batch = int(iters), float(lr), int(batch)

    def fit(self, model, nfe, x_T, teacher, cap):
        sde = model.sde
        alpha_zero = bool(sde.alpha_T_is_zero)
        params: dict[str, torch.Tensor] = {}
        if self.coefficients:
            afs = not alpha_zero and float(level(sde, torch.tensor(sde.T, dtype=torch.float64))) > 10
            steps = nfe + afs - alpha_zero
            b0 = adams_bashforth(steps, self.order)
            start = LearnedMultistep(b0, afs)
            name, ts0 = start_grid(model, start, steps + alpha_zero, x_T, teacher, cap, nfe)
            params["b"] = b0.clone()
            base_params = {"base": LearnedMultistep.name, "b": b0.tolist(), "afs": afs}

            def solver_of(p):
                return LearnedMultistep(p["b"], afs)
        else:
            fixed = resolve_solver(self.base, {})
            name, ts0 = start_grid(model, fixed, fixed.plan(nfe).n_steps, x_T, teacher, cap, nfe)
            base_params = {"base": self.base}

            def solver_of(p):
                return fixed

        params["z"] = logits_of(ts0)
        best, history = adam(
            params,
            lambda rows: fit_loss(model, solver_of(params), grid_of(params["z"], sde.T, sde.t_min), x_T, teacher, rows),
            cap,
            nfe,
            self.iters,
            self.lr,
            x_T.shape[0],
            self.batch,
        )
        ts = grid_of(best["z"], sde.T, sde.t_min)
        fitted = dict(base_params, b=best["b"].tolist()) if self.coefficients else base_params
        return FitResult(
            str(base_params["base"]),
            fitted,
            ts.tolist(),
            f"{base_params['base']} on {name}",
            base_params,
            ts0.tolist(),
            {"iterations": len(history), "start_loss": history[0] if history else None},
        )

    @classmethod
    def build(cls, fitted):
        p = fitted.params
        if "b" in p:
            return LearnedMultistep(p["b"], p["afs"])
        return resolve_solver(p["base"], {})
