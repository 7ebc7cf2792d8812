"""The base of the adaptive Runge-Kutta solvers: the probability-flow ODE (lambda = 1) through torchdiffeq.odeint,

    dx/dt = F(x, t) = f(x, t) - g(t)^2 s(x, t) / 2,   integrated from t = T down to t = t_min,

with the step size chosen by torchdiffeq's embedded error estimate so that the local error per
component stays below atol + rtol |x|.  The last step lands exactly on t_min (never past it, where
the score is undefined).  NFE is what the model counted; ``nfe`` given to ``sample`` is a cap
(``max_nfe``): an evaluation that would pass it stops the run with an error instead.
One solver a module beside this one: ``dopri5``, ``bosh3``, ``adaptive_heun``, ``dopri8``.
"""

from __future__ import annotations

from samplekit.ode import check_ode, integrate
from samplekit.reverse import probability_flow_drift
from samplekit.solver import Solver, SolverError


class TorchdiffeqODE(Solver):
    """Base of the adaptive torchdiffeq solvers; a subclass names its torchdiffeq ``method``."""

    method = "dopri5"
    adaptive = True
    stochastic = False

    def __init__(
        self, rtol: float = 1e-5, atol: float = 1e-5, options: dict | None = None, denoise_final: bool = False
    ) -> None:
        super().__init__(denoise_final=denoise_final)
        check_ode(self.method, rtol, atol)
        if options is not None and not isinstance(options, dict):
            raise SolverError(
                f"options={options!r} must be a dict of torchdiffeq options, e.g. {{'max_num_steps': 1000}}"
            )
        self.rtol, self.atol = float(rtol), float(atol)
        self.ode_options = dict(options or {})

    def solve(self, model, x, noise, max_nfe):
        sde, start = model.sde, model.nfe
        per_eval = int(getattr(model, "nfe_per_eval", 1))
        budget = None if max_nfe is None else max_nfe - (1 if self.denoise_final else 0)

        def func(t, x_t):
            spent = model.nfe - start
            if budget is not None and spent + per_eval > budget:
                raise SolverError(
                    f"solver {self.name!r} would exceed max_nfe={max_nfe}: it has spent nfe={spent} network calls "
                    f"and reached t={float(t):g} of [{sde.t_min:g}, {sde.T:g}]; loosen the tolerances "
                    f"(rtol={self.rtol:g}, atol={self.atol:g}) or raise nfe"
                )
            drift, _ = probability_flow_drift(model, x_t, t)
            return drift

        (out,) = integrate(
            lambda t, state: (func(t, state[0]),),
            (x,),
            sde.T,
            sde.t_min,
            self.method,
            self.rtol,
            self.atol,
            self.ode_options,
        )
        return out
