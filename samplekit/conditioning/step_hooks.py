"""Conditioning as solver wrappers (step hooks): replacement and RePaint-style resampling.

Both wrap any *fixed-step* registered solver: after each of its steps t0 -> t1 the observed
coordinates of x are replaced by a fresh draw of z_o(t1) | y (see ``noising``):

* ``replacement`` (score_sde's inpainting/colorization): x_{t1} = merge(alpha_t1 ybar + std_t1 z, free part
  of solver.step(x_{t0})).  Its bias: the free part follows p_t(z_u | z_o) and never sees y itself
  (at high noise the replaced z_o barely informs z_u, and what the free part committed to early
  is not undone later).
* ``resample`` (RePaint, Lugmayr et al. 2022; jump length 1): each step is repeated ``jumps``
  times; between repeats x_{t1} is pushed back to t0 by the forward transition
  x_{t0} = (alpha_t0/alpha_t1) x_{t1} + sqrt(sigma_t0^2 - (alpha_t0/alpha_t1)^2 sigma_t1^2) z,
  which lets the free part re-harmonise with the observation.  Cost: ``jumps`` x the NFE per step.

They are step hooks rather than score wrappers because they *re-noise* x (a fresh draw of the
observed part, a forward jump), which no vector field can express.  Adaptive solvers (one
``solve`` call, no steps) cannot be hooked: use ``observed_score`` (a score wrapper) for them.
A multistep solver's state is carried from the last repeat of each step.
"""

from __future__ import annotations

from dataclasses import replace

from samplekit.checks import positive_int
from samplekit.conditioning.noising import forward_jump, replace_observed
from samplekit.conditioning.observation import LinearObservation
from samplekit.errors import ArgumentTypeError
from samplekit.solver import Plan, Solver, SolverError, resolve_solver


class ConditionedSolver(Solver):
    """A fixed-step solver whose steps are followed by a replacement of the observed coordinates."""

    method = "replacement"
    stochastic = True

    def __init__(self, solver: str | Solver, observation: LinearObservation, jumps: int = 1, **solver_options) -> None:
        solver = resolve_solver(solver, solver_options)
        if solver.capabilities().adaptive:
            raise SolverError(
                f"solver {solver.name!r} is adaptive (no steps to hook); use a fixed-step solver, "
                "or sk.conditioning.observed_score(model, observation), which works with any solver"
            )
        if not isinstance(observation, LinearObservation):
            raise ArgumentTypeError(
                f"observation={observation!r} must be a samplekit.conditioning observation "
                "(Inpainting, Colorization or DenseObservation)"
            )
        jumps = positive_int(jumps, "jumps", "a positive integer (1 = no resampling)", error=SolverError)
        self.base, self.observation, self.jumps = solver, observation, jumps
        # the one per-instance name: a wrapper is named after the solver it wraps (e.g. ddim+replacement)
        self.name = f"{solver.name}+{self.method}"  # type: ignore[misc]
        self.schedule, self.schedule_options = solver.schedule, solver.schedule_options
        self.denoise_final = solver.denoise_final

    def capabilities(self):
        """The wrapped solver's, stochastic (the observed part is redrawn), ``jumps`` times its calls a step."""
        base = self.base.capabilities()
        return replace(base, stochastic=True, nfe_per_step=base.nfe_per_step * self.jumps)

    def plan(self, nfe: int, calls_per_eval: int = 1) -> Plan:
        """The wrapped solver's plan for the evaluations left after ``jumps`` repeats of each step."""
        df = 1 if self.denoise_final else 0
        evals = df + max(nfe // calls_per_eval - df, 0) // self.jumps
        return replace(self.base.plan(evals * calls_per_eval, calls_per_eval), nfe=nfe)

    def plan_for_grid(self, n_steps: int, calls_per_eval: int = 1) -> Plan:
        """The wrapped solver's plan for the grid, its steps' calls ``jumps`` times."""
        plan = self.base.plan_for_grid(n_steps, calls_per_eval)
        final = (1 if self.denoise_final else 0) * calls_per_eval
        return replace(plan, nfe=(plan.nfe - final) * self.jumps + final)

    def init(self, model, x, ts, noise, plan):
        self.observation.check_shape(model.shape)
        return self.base.init(model, x, ts, noise, plan)

    def step(self, model, i, t0, t1, x, state, noise, plan):
        for j in range(self.jumps):
            x1, new_state, denoised = self.base.step(model, i, t0, t1, x, state, noise, plan)
            x1 = replace_observed(self.observation, model.sde, x1, t1, noise)
            if j + 1 < self.jumps:
                x = forward_jump(model.sde, x1, t1, t0, noise)
        return x1, new_state, denoised

    def options(self) -> dict:
        return {"solver": self.base.name, "method": self.method, "jumps": self.jumps, **self.base.options()}


class Resampling(ConditionedSolver):
    """RePaint: replacement with ``jumps`` forward/backward repeats of every step."""

    method = "resample"


def replacement(solver: str | Solver, observation: LinearObservation, **solver_options) -> ConditionedSolver:
    """score_sde's replacement: ``sk.sample(model, solver=replacement("euler_maruyama", obs), nfe=...)``."""
    return ConditionedSolver(solver, observation, 1, **solver_options)


def resample(solver: str | Solver, observation: LinearObservation, jumps: int = 4, **solver_options) -> Resampling:
    """RePaint-style resampling: each step repeated ``jumps`` times with forward jumps in between."""
    return Resampling(solver, observation, jumps, **solver_options)
