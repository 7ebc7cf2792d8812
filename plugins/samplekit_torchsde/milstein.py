"""``sde_milstein``: Milstein's scheme (Ito) on the reverse SDE, through torchsde.

    Y_1 = Y_0 + F h + G dW + G G' (dW^2 - h) / 2,

whose correction vanishes for the reverse SDE's additive noise (G' = 0), so it takes the Euler-Maruyama
step.  Milstein (1974), "Approximate integration of stochastic differential equations", Theory Probab.
Appl. 19(3).  The time change and the Brownian increments: ``samplekit_torchsde.stepping``.
"""

from __future__ import annotations

from samplekit_torchsde.stepping import TorchsdeStep


class Milstein(TorchsdeStep):
    """Milstein (Ito), torchsde ``milstein``: Euler-Maruyama plus G G' (dW^2 - h) / 2, which is zero for the
    reverse SDE's additive noise, so it takes the Euler-Maruyama step; one network call a step."""

    name, method, order, nfe_per_step = "sde_milstein", "milstein", 1.0, 1
