"""``ode_bosh3``: the Bogacki-Shampine 3(2) pair on the probability-flow ODE, through torchdiffeq.

Four stages, third-order solution with an embedded second-order error estimate, first same as last
(three network calls a step).  Bogacki & Shampine (1989), "A 3(2) pair of Runge-Kutta formulas",
Appl. Math. Lett. 2(4).  Step-size control and the NFE cap: ``samplekit_torchdiffeq.base``.
"""

from __future__ import annotations

from samplekit_torchdiffeq.base import TorchdiffeqODE


class Bosh3(TorchdiffeqODE):
    """Bogacki-Shampine 3(2), torchdiffeq ``bosh3``: 3 evaluations per step (first same as last)."""

    name, method, order, nfe_per_step = "ode_bosh3", "bosh3", 3.0, 3
