"""The base of the adaptive Runge-Kutta solvers: the probability-flow ODE (lambda = 1) through torchdiffeq.odeint,

    dx/dt = F(x, t) = f(x, t) - g(t)^2 s(x, t) / 2,   integrated from t = T down to t = t_min,

with the step size chosen by torchdiffeq's embedded error estimate so that the local error per
component stays below atol + rtol |x|.  The last step lands exactly on t_min (never past it, where
the score is undefined).  NFE is what the model counted; ``nfe`` given to ``sample`` is a cap that
the core enforces (``samplekit.metering``).  Accepted steps are reported to the progress bar and callback.
One solver a module beside this one: ``dopri5``, ``bosh3``, ``adaptive_heun``, ``dopri8``.
"""

from __future__ import annotations

import torch

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

    def solve(self, model, x, noise, plan, on_step):
        """Integrate from T to t_min; each accepted step is reported to ``on_step`` (the cap is the core's)."""
        sde = model.sde
        pending: list = []  # the accepted step (t0, t1) whose end state torchdiffeq has not shown yet

        def func(t, state):
            return (probability_flow_drift(model, state[0], t)[0],)

        def accept(t0, state, dt):  # torchdiffeq shows an accepted step by its start: report the one before it
            if pending:
                on_step(pending[0], t0, state[0], None)
            pending[:] = [t0, t0 - dt]

        func.callback_accept_step = accept
        (out,) = integrate(func, (x,), sde.T, sde.t_min, self.method, self.rtol, self.atol, self.ode_options)
        if pending:
            on_step(pending[0], torch.as_tensor(sde.t_min), out, None)
        return out
