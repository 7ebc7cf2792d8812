"""``beta``: timesteps at the quantiles of a Beta(a, b) distribution, Lee, Lin & Rizzo (2024),
"Beta sampling is all you need: efficient image generation strategy for diffusion models using stepwise
spectral analysis" (ComfyUI's ``beta`` scheduler, a = b = 0.6 by default).

With F^-1 the Beta(a, b) quantile function, on the model's time axis (ComfyUI applies it to the
training timesteps, which are affine in the SDE's t):

    t_i = t_min + (T - t_min) F^-1(1 - i/n),   i = 0..n,

so a, b < 1 crowd the steps at both ends (high and low noise).  ComfyUI rounds to integer timesteps and
drops repeats; samplekit's time is continuous, so there is nothing to round and every point is kept.
The quantiles come from scipy (``scipy.special.betaincinv``; ``pip install scipy``).
"""

from __future__ import annotations

import torch

from samplekit.errors import InvalidArgumentError
from samplekit.sde import SDE
from samplekit_schedules._noise import finite_positive, steps


def beta(sde: SDE, n_steps: int, alpha: float = 0.6, beta: float = 0.6) -> torch.Tensor:
    a = finite_positive(alpha, "alpha", "Lee et al. use 0.6")
    b = finite_positive(beta, "beta", "Lee et al. use 0.6")
    n = steps(n_steps)
    try:
        from scipy.special import betaincinv
    except ImportError:
        raise InvalidArgumentError("schedule 'beta' needs scipy for the Beta quantiles: pip install scipy") from None
    q = torch.linspace(1.0, 0.0, n + 1, dtype=torch.float64).numpy()
    u = torch.as_tensor(betaincinv(a, b, q), dtype=torch.float64)
    ts = sde.t_min + (sde.T - sde.t_min) * u
    ts[0], ts[-1] = sde.T, sde.t_min
    return ts
