"""SDE solvers on the reverse SDE, through torchsde.

torchsde is imported here, at the top: without it this plugin fails to load and
`samplekit list` reports why (``pip install samplekit[sde]``), while the other plugins keep working.
"""

from __future__ import annotations

import torchsde  # noqa: F401  (the dependency; a missing one is reported by `samplekit list`)

from samplekit.hookspecs import RegisterSolver, hookimpl
from samplekit_torchsde.euler import Euler
from samplekit_torchsde.milstein import Milstein
from samplekit_torchsde.reversible_heun import ReversibleHeun
from samplekit_torchsde.srk import SRK


@hookimpl
def samplekit_register_solvers(register: RegisterSolver) -> None:
    register(Euler)
    register(Milstein)
    register(SRK)
    register(ReversibleHeun)
