"""Adaptive black-box ODE solvers on the probability-flow ODE, through torchdiffeq.

torchdiffeq is imported here, at the top: without it this plugin fails to load and
`samplekit list` reports why (``pip install samplekit[ode]``), while the other plugins keep working.
"""

from __future__ import annotations

import torchdiffeq  # noqa: F401  (the dependency; a missing one is reported by `samplekit list`)

from samplekit.hookspecs import RegisterSolver, hookimpl
from samplekit_torchdiffeq.adaptive_heun import AdaptiveHeun
from samplekit_torchdiffeq.bosh3 import Bosh3
from samplekit_torchdiffeq.dopri5 import Dopri5
from samplekit_torchdiffeq.dopri8 import Dopri8


@hookimpl
def samplekit_register_solvers(register: RegisterSolver) -> None:
    register(Dopri5)
    register(Bosh3)
    register(AdaptiveHeun)
    register(Dopri8)
