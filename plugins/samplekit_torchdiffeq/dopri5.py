"""``ode_dopri5``: the Dormand-Prince 5(4) pair on the probability-flow ODE, through torchdiffeq.

Seven stages, the fifth-order solution propagated and the embedded fourth-order one giving the error
estimate; the last stage is the next step's first (FSAL), so a step costs six network calls.
Dormand & Prince (1980), "A family of embedded Runge-Kutta formulae", J. Comput. Appl. Math. 6(1).
Step-size control and the NFE cap: ``samplekit_torchdiffeq.base``.
"""

from __future__ import annotations

from samplekit_torchdiffeq.base import TorchdiffeqODE


class Dopri5(TorchdiffeqODE):
    """Dormand-Prince 5(4), torchdiffeq ``dopri5``: 6 evaluations per step (first same as last)."""

    name, method, order, nfe_per_step = "ode_dopri5", "dopri5", 5.0, 6
