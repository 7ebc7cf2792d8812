"""The learned-direction step of AMED-Solver (K = 1) and EPD-Solver (K >= 2), in the noise level.

With s_t = sigma_t / alpha_t, y = x / alpha_t and dy/ds = eps (the probability-flow ODE in Karras et al.
2022's form), one step t_i -> t_{i+1} with per-step parameters r_ik in (0, 1), weights w_ik (sum 1) and a
scale c_i (Zhou et al. 2024, AMED-Solver, eq. 11-13; Zhu et al. 2025, EPD-Solver, eq. 8-10):

    eps_i          = eps(x_i, t_i)
    s_ik           = s_i^{1 - r_ik} s_{i+1}^{r_ik}                   (intermediate levels, log-space)
    x_ik           = alpha(s_ik) (x0_i + s_ik eps_i)                  (DDIM / Euler in s to s_ik)
    y_{i+1}        = y_i + c_i (s_{i+1} - s_i) sum_k w_ik eps(x_ik, t(s_ik))

so a step costs 1 + K calls; the K evaluations depend only on x_i and eps_i (parallel directions).
K = 1, r = 1/2, w = 1, c = 1 is DPM-Solver-2 / KDPM2 (``dpm_2``) exactly.  Two budget devices:

- ``afs`` (AMED's analytical first step): the first step's eps_0 is not evaluated but taken as the
  posterior mean for unit-variance data, eps_0 = sigma x / (alpha^2 + sigma^2) (x0_0 = alpha x / (alpha^2 +
  sigma^2)), which is x / sigma as alpha_T -> 0 (AMED takes x_T / sigma_T); it saves one call;
- ``single_last``: the last step is the Euler / DDIM step y + c (s_{i+1} - s_i) eps_i (one call).

A step from alpha_t = 0 (rectified flow at T) is taken by ``sample``'s ``alpha_zero_step`` before this
solver runs, so the parameters index the steps after it.  Per-step parameters are constructor
arguments (float64 tensors: the fit differentiates through them); nothing of a run is kept on self.
"""

from __future__ import annotations

import torch

from samplekit.solver import Plan, Solver, SolverError

Tensor = torch.Tensor


def _c(value: Tensor, x: Tensor) -> Tensor:
    return value.to(dtype=x.dtype, device=x.device)


def level(sde, t) -> Tensor:
    """s_t = sigma_t / alpha_t = exp(-lambda_t)."""
    return torch.exp(-sde.log_snr(t))


class ParallelDirections(Solver):
    """Learned intermediate levels r, direction weights w and step scales c per step (AMED K = 1, EPD K >= 2)."""

    name = "parallel_directions"
    order = 2.0
    stochastic = False
    nfe_per_step = 2
    default_schedule = "karras"

    def __init__(self, r=None, w=None, c=None, afs: bool = False, single_last: bool = False, **base) -> None:
        super().__init__(**base)
        self.r = torch.as_tensor([[0.5]] if r is None else r, dtype=torch.float64)
        self.w = torch.ones_like(self.r) / self.r.shape[1] if w is None else torch.as_tensor(w, dtype=torch.float64)
        self.c = (
            torch.ones(self.r.shape[0], dtype=torch.float64) if c is None else torch.as_tensor(c, dtype=torch.float64)
        )
        if self.r.ndim != 2 or self.w.shape != self.r.shape or self.c.shape != (self.r.shape[0],):
            raise SolverError(
                f"parallel directions: r and w must be (steps, K) and c (steps,); got {tuple(self.r.shape)}, "
                f"{tuple(self.w.shape)}, {tuple(self.c.shape)}"
            )
        self.afs, self.single_last = bool(afs), bool(single_last)

    def plan_for_grid(self, n_steps: int, calls_per_eval: int = 1) -> Plan:
        """The cap for a grid: (1 + K) calls a step, less the analytical first step's and the single last
        step's savings (a first step from alpha = 0, taken by the core, costs 1: within the cap)."""
        k = self.r.shape[1]
        need = n_steps * (1 + k) - int(self.afs) - k * int(self.single_last)
        return Plan(n_steps, need * calls_per_eval, calls_per_eval)

    def init(self, model, x, ts, noise, plan):
        steps = len(ts) - 1
        if steps > self.r.shape[0]:
            raise SolverError(f"{self.name}: the grid has {steps} steps but parameters for {self.r.shape[0]}")
        return steps

    def step(self, model, i, t0, t1, x, steps, noise, plan):
        sde = model.sde
        s0, s1 = level(sde, t0), level(sde, t1)
        alpha0, alpha1 = sde.marginal(t0)[0], sde.marginal(t1)[0]
        if i == 0 and self.afs:
            sigma0 = sde.marginal(t0)[1]
            norm = alpha0**2 + sigma0**2
            eps0, x0 = _c(sigma0 / norm, x) * x, _c(alpha0 / norm, x) * x
        else:
            pred = model.predict(x, t0)
            eps0, x0 = pred.eps, pred.x0
        if self.single_last and i == steps - 1:
            direction = eps0
        else:
            direction = torch.zeros_like(x)
            for r, w in zip(self.r[i], self.w[i]):
                s_k = torch.exp((1 - r) * torch.log(s0) + r * torch.log(s1))
                t_k = sde.time_at_log_snr(-torch.log(s_k))
                x_k = _c(sde.marginal(t_k)[0], x) * (x0 + _c(s_k, x) * eps0)
                direction = direction + _c(w, x) * model.predict(x_k, t_k).eps
        y_next = x / _c(alpha0, x) + _c(self.c[i] * (s1 - s0), x) * direction
        return _c(alpha1, x) * y_next, steps, x0


def plan(nfe: int, k: int, alpha_zero: bool, afs_ok: bool) -> tuple[int, bool, bool]:
    """(solver steps, afs, single_last) spending at most ``nfe`` calls, as many as can be spent, with the
    most steps, preferring afs.  Calls: (1 if the grid starts at alpha = 0) + steps (1 + K) - afs - K single_last
    (with K >= 2 and no afs some budgets cannot be met exactly: one call is then left unspent)."""
    budget = nfe - (1 if alpha_zero else 0)
    for spend in range(budget, 0, -1):
        for steps in range(spend, 0, -1):
            for afs in (True, False) if afs_ok else (False,):
                for single in (False, True):
                    if afs and single and steps < 2:
                        continue
                    if steps * (1 + k) - afs - k * single == spend:
                        return steps, afs, single
    raise SolverError(f"nfe={nfe} is too small for {k} parallel direction(s) a step; raise nfe")
