"""``ode_dopri8``: the Dormand-Prince 8(7) pair on the probability-flow ODE, through torchdiffeq.

Thirteen stages, eighth-order solution with an embedded seventh-order error estimate.  Prince & Dormand
(1981), "High order embedded Runge-Kutta formulae", J. Comput. Appl. Math. 7(1).  Step-size control and
the NFE cap: ``samplekit_torchdiffeq.base``.
"""

from __future__ import annotations

from samplekit_torchdiffeq.base import TorchdiffeqODE


class Dopri8(TorchdiffeqODE):
    """Dormand-Prince 8(7), torchdiffeq ``dopri8``: 13 evaluations per step (first same as last)."""

    name, method, order, nfe_per_step = "ode_dopri8", "dopri8", 8.0, 13
