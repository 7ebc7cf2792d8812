"""Adaptive black-box ODE solvers on the probability-flow ODE, through torchdiffeq.

torchdiffeq is imported here, at the top: without it this plugin fails to load and
`samplekit list` reports why (``pip install samplekit[ode]``), while the other plugins keep working.
"""

from __future__ import annotations

import torchdiffeq  # noqa: F401  (the dependency; a missing one is reported by `samplekit list`)

from samplekit.hookspecs import RegisterSolver, hookimpl

from samplekit_torchdiffeq.adaptive import SOLVERS


@hookimpl
def samplekit_register_solvers(register: RegisterSolver) -> None:
    for cls in SOLVERS:
        register(cls)
