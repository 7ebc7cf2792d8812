"""Annealed Langevin dynamics (NCSN, Song & Ermon 2019) over the noise levels of the solver's grid.

Grid T = t_0 > t_1 > ... > t_L = t_min; level i is t_i (i = 1..L), noise level n_i = sigma_{t_i} / alpha_{t_i}
(geometric in i on a VE SDE with the default uniform grid, as NCSN's sigma_1 > ... > sigma_L).  NCSN runs
on y = x / alpha_t, whose law is the data plus N(0, n_i^2) noise and whose score is alpha_t s(alpha_t y, t).
In x that is, at each level, the rescale x <- (alpha_{t_i} / alpha_{t_(i-1)}) x (1 on VE) and then K times

    x <- x + a_i s(x, t_i) + sqrt(2 a_i) z,   a_i = eps sigma_{t_i}^2 / n_L^2,   z ~ N(0, I),

i.e. NCSN's step eps n_i^2 / n_L^2 in y.  K = ``n_steps_each`` (default 5); budget: L = nfe // K levels.
``step_lr`` is eps; by default eps = 0.2 n_L^2 (NCSN's eps = 2e-5 at sigma_L = 0.01), i.e.
a_i = 0.2 sigma_{t_i}^2, a step that does not depend on the SDE's t_min.  Every SDE works: on VE ones this
is NCSN exactly.
"""

from __future__ import annotations

import math
from dataclasses import replace

from samplekit.checks import positive_int
from samplekit.sde import as_time
from samplekit.solver import Solver, SolverError

DEFAULT_RATIO = 0.2  # NCSN (2019): eps = 2e-5 with sigma_L = 0.01


class AnnealedLangevin(Solver):
    """NCSN's annealed Langevin dynamics; K network calls per noise level."""

    name = "annealed_langevin"
    order = 0.0  # a fixed relative step leaves an O(a_i / sigma_i^2) bias that more levels do not remove
    stochastic = True
    nfe_per_step = 5  # the default n_steps_each
    default_schedule = "uniform"

    def __init__(self, n_steps_each: int = 5, step_lr: float | None = None, **base) -> None:
        super().__init__(**base)
        n_steps_each = positive_int(
            n_steps_each,
            "annealed_langevin: n_steps_each",
            "a positive integer (Langevin steps per noise level)",
            error=SolverError,
        )
        if step_lr is not None and not (math.isfinite(float(step_lr)) and float(step_lr) > 0):
            raise SolverError(
                f"annealed_langevin: step_lr={step_lr!r} must be a positive number (or None for 0.2 n_L^2)"
            )
        self.n_steps_each = int(n_steps_each)
        self.step_lr = None if step_lr is None else float(step_lr)

    def capabilities(self):
        """n_steps_each Langevin calls per noise level."""
        return replace(super().capabilities(), nfe_per_step=self.n_steps_each)

    def init(self, model, x, ts, noise, plan):
        """The ratio eps / n_L^2 that sets a_i = ratio sigma_{t_i}^2."""
        if self.step_lr is None:
            return DEFAULT_RATIO
        alpha_L, sigma_L = model.sde.marginal(as_time(ts[-1], x))
        return self.step_lr * (alpha_L / sigma_L) ** 2

    def step(self, model, i, t0, t1, x, ratio, noise, plan):
        alpha0, _ = model.sde.marginal(as_time(t0, x))
        alpha1, sigma1 = model.sde.marginal(as_time(t1, x))
        x = x * (alpha1 / alpha0)
        a = ratio * sigma1 * sigma1
        for _ in range(self.n_steps_each):
            pred = model.predict(x, t1)
            x = x + a * pred.score + (2 * a).sqrt() * noise.randn_like(x)
        return x, ratio, pred.x0
