"""DDIM (Song, Meng & Ermon 2021) for any SDE with Gaussian marginals, from t0 = t to t1 = s < t:

    eps_hat = (x_t - alpha_t x0_hat) / sigma_t,  x0_hat = D(x_t, t),
    c = eta sqrt(sigma_{t|s}^2 sigma_s^2 / sigma_t^2)        (the ddpm posterior standard deviation),
    x_s = alpha_s x0_hat + sqrt(sigma_s^2 - c^2) eps_hat + c z,   z ~ N(0, I).

eta = 0: deterministic, a first-order exponential integrator of the probability-flow ODE in lambda_t;
eta = 1: the same marginals as ddpm (ancestral sampling).  eta must lie in [0, 1], so that
sigma_s^2 - c^2 >= 0 on every grid.  Default grid: ``logsnr``, as for the ODE solvers.

``stride`` (diffusers' DDIMScheduler): the step from t lands at s = max(t - stride, t_min) instead of the
next grid time t1, and the next step starts from t1 with that x unchanged.  diffusers steps from timestep
n to n - N // m (m inference steps) whatever its next timestep is; with ``timestep_spacing`` linspace or
trailing and N / m not an integer the next timestep is lower (by up to (N - 1) / (m - 1) - N // m), so x
is carried to it as it is.  In model time stride = (N // m) / N; ``scheduler_solver`` sets it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from samplekit.errors import SolverError
from samplekit.options import Ge, Le
from samplekit.solver import Solver
from samplekit_builtin.gaussian_step import gaussian_step


class DDIM(Solver):
    """DDIM; deterministic (order 1) at eta = 0, stochastic for eta > 0."""

    name = "ddim"
    aliases = (
        "DDIMScheduler",
        "sample_euler",
        "euler",
        "EulerDiscreteScheduler",
    )  # deterministic DDIM is Euler in the noise level s = sigma/alpha (Karras et al. 2022, Sec. 3)
    order = 1.0
    stochastic = False
    nfe_per_step = 1
    default_schedule = "logsnr"

    def __init__(self, eta: Annotated[float, Ge(0), Le(1)] = 0.0, stride: float | None = None, **base) -> None:
        """``eta`` in [0, 1]: 0 = deterministic DDIM, 1 = DDPM-like noise.  ``stride``: land each step at
        max(t - stride, t_min), diffusers' DDIMScheduler rule (module docstring)."""
        super().__init__(**base)
        if stride is not None and not float(stride) > 0:
            raise SolverError(f"ddim: stride={stride!r} must be a positive model-time step, e.g. (N // m) / N")
        self.eta = float(eta)
        self.stride = None if stride is None else float(stride)

    def capabilities(self):
        """The class declares the default (eta = 0); an instance with eta > 0 is stochastic."""
        return replace(super().capabilities(), stochastic=self.eta > 0)

    def step(self, model, i, t0, t1, x, state, noise, plan):
        pred = model.predict(x, t0)
        if self.stride is not None:
            t1 = (t0 - self.stride).clamp_min(model.sde.t_min)
        post = gaussian_step(model.sde, t0, t1, x)
        x_s = post.alpha_s * pred.x0
        if self.eta == 0.0:
            return x_s + post.sigma_s * pred.eps, state, pred.x0
        c2 = self.eta**2 * post.var
        x_s = x_s + (post.sigma_s**2 - c2).clamp_min(0).sqrt() * pred.eps
        return x_s + c2.sqrt() * noise.randn_like(x), state, pred.x0
