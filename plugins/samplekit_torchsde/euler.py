"""``sde_euler``: Euler-Maruyama on the reverse SDE, through torchsde (one ``sdeint`` step per grid step).

    Y_1 = Y_0 + F(Y_0, s_0) h + G(s_0) dW,   dW ~ N(0, h I) from the NoiseSource,

strong order 1 for the reverse SDE's additive noise, weak order 1.  Maruyama (1955), "Continuous Markov
processes and stochastic equations", Rend. Circ. Mat. Palermo 4.  The time change and the Brownian
increments: ``samplekit_torchsde.stepping`` and ``reverse_sde``.
"""

from __future__ import annotations

from samplekit_torchsde.stepping import TorchsdeStep


class Euler(TorchsdeStep):
    """Euler-Maruyama, torchsde ``euler``: Y_1 = Y_0 + F(Y_0, s_0) h + G(s_0) dW (strong order 1 for
    additive noise, weak order 1); one network call a step."""

    name, method, order, nfe_per_step = "sde_euler", "euler", 1.0, 1
