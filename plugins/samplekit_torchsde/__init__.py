"""SDE solvers on the reverse SDE, through torchsde.

torchsde is imported here, at the top: without it this plugin fails to load and
`samplekit list` reports why (``pip install samplekit[sde]``), while the other plugins keep working.
"""

from __future__ import annotations

import torchsde  # noqa: F401  (the dependency; a missing one is reported by `samplekit list`)

from samplekit.hookspecs import hookimpl

from samplekit_torchsde.reversible_heun import ReversibleHeun
from samplekit_torchsde.stepping import SOLVERS


@hookimpl
def samplekit_register_solvers(register):
    for cls in (*SOLVERS, ReversibleHeun):
        register(cls)
