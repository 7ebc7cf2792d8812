"""An out-of-tree samplekit plugin: a midpoint solver on the probability-flow ODE.

Installed with ``pip install plugins/example_plugin`` it is found through the entry-point
group ``samplekit`` (plugin name ``example``); ``samplekit list solver`` then shows it.

It follows the solver contract of ``samplekit.solver``: the class declares its facts (two network
calls a step, so the core's default ``plan`` gives nfe // 2 steps), and ``step`` receives the run's
``plan`` and returns (x, state, denoised).  The core meters the model, so a step that made more calls
than declared would be stopped at the cap, never spend past it.
"""

from __future__ import annotations

from samplekit.hookspecs import RegisterSolver, hookimpl
from samplekit.reverse import probability_flow_drift
from samplekit.solver import Plan, Solver


class ExampleMidpoint(Solver):
    """Explicit midpoint on the probability-flow ODE: x_{t1} = x - h F(x - (h/2) F(x, t0), t0 - h/2)."""

    name = "example_midpoint"
    order = 2
    stochastic = False
    nfe_per_step = 2

    def step(self, model, i, t0, t1, x, state, noise, plan: Plan):
        h = t0 - t1
        f0, pred = probability_flow_drift(model, x, t0)
        f_mid, _ = probability_flow_drift(model, x - 0.5 * h * f0, t0 - 0.5 * h)
        return x - h * f_mid, state, pred.x0


@hookimpl
def samplekit_register_solvers(register: RegisterSolver) -> None:
    register(ExampleMidpoint)
