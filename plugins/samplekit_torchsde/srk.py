"""``sde_srk``: the stochastic Runge-Kutta scheme SRA1 for additive noise on the reverse SDE, through torchsde.

Two drift stages, at s_0 and s_0 + 3h/4, combined with the increment dW and the space-time Levy area
of the Brownian motion (both drawn from the NoiseSource): strong order 1.5.  Roessler (2010),
"Runge-Kutta methods for the strong approximation of solutions of stochastic differential equations",
SIAM J. Numer. Anal. 48(3).  The time change and the Brownian increments: ``samplekit_torchsde.stepping``.
"""

from __future__ import annotations

from samplekit_torchsde.stepping import TorchsdeStep


class SRK(TorchsdeStep):
    """Stochastic Runge-Kutta SRA1 (Rossler 2010) for additive noise, torchsde ``srk``:
    two drift stages, at s_0 and s_0 + 3h/4, with the space-time Levy area of the Brownian motion
    (strong order 1.5); two network calls a step."""

    name, method, order, nfe_per_step = "sde_srk", "srk", 1.5, 2
    levy_area = "space-time"
