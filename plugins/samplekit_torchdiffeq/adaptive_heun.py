"""``ode_adaptive_heun``: Heun's method with an Euler error estimate on the probability-flow ODE (torchdiffeq).

    x_E = x + h F(t, x),   x_{t+h} = x + h/2 [F(t, x) + F(t + h, x_E)],   error = x_{t+h} - x_E

(Heun's trapezoidal predictor-corrector, order 2, with the embedded Euler step as its error estimate;
Hairer, Norsett & Wanner, Solving ODEs I, II.4).  Step-size control and the NFE cap:
``samplekit_torchdiffeq.base``.
"""

from __future__ import annotations

from samplekit_torchdiffeq.base import TorchdiffeqODE


class AdaptiveHeun(TorchdiffeqODE):
    """Heun 2 with an Euler error estimate, torchdiffeq ``adaptive_heun``: 1 new evaluation per step.

    torchdiffeq reuses the slope at the Euler predictor, F(t1, x0 + h F0), as the next step's F0
    (measured: NFE = 1 + steps), so each step costs one network call.
    """

    name, method, order, nfe_per_step = "ode_adaptive_heun", "adaptive_heun", 2.0, 1
