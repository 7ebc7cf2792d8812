"""Predictor-corrector sampling (Song et al. 2021), from t0 = t to t1 = s on the solver's grid:

    corrector: n_corrector Langevin steps at t, each with its own z ~ N(0, I):
        e = 2 a (snr mean_b|z_b| / mean_b|s(x_b, t)|)^2   (norms over all non-batch dims),
        x <- x + e s(x, t) + sqrt(2 e) z,      a = alpha_{t|s}^2  (1 on VE SDEs; 1 - beta_i on VP);
    predictor: one reverse-SDE step t -> s (``reverse_diffusion``, ``euler_maruyama`` or ``ancestral``,
        see ``predictors``).

Corrector then predictor, as score_sde's ``pc_sampler``, so the last step ends on t_min with a predictor.
The norms are averaged over the batch, as in score_sde: a per-sample ratio |z_b| / |s_b| is heavy-tailed
in low dimension (|s| -> 0 at mode centres and saddles gives unbounded steps; on the 2-D ring it threw
8-10% of the samples off the ring), while in high dimension both agree as the norms concentrate.  So the
corrector couples the samples of a batch: per-sample seeds do not make pc's samples batch-independent.
``snr`` defaults to 0.16, score_sde's value for its CIFAR-10 VE model (their VP configs use 0.16 or
0.01 with fewer corrector steps).  NFE per step = 1 + n_corrector (1 with corrector="none").
"""

from __future__ import annotations

from dataclasses import replace

import torch

from samplekit.solver import Solver, SolverError
from samplekit_builtin.gaussian_step import gaussian_step
from samplekit_builtin.predictors import PREDICTORS

CORRECTORS = ("langevin", "none")


def langevin_correct(model, t, x, a, snr: float, noise):
    """One score_sde Langevin corrector step at time t with signal-to-noise ratio ``snr`` (batch-mean norms)."""
    score = model.predict(x, t).score
    z = noise.randn_like(x)
    tiny = torch.finfo(x.dtype).tiny
    ratio = snr * z.flatten(1).norm(dim=1).mean() / score.flatten(1).norm(dim=1).mean().clamp_min(tiny)
    e = 2 * a * ratio * ratio
    return x + e * score + (2 * e).sqrt() * z


class PredictorCorrector(Solver):
    """Predictor-corrector sampler (options predictor, corrector, n_corrector, snr)."""

    name = "pc"
    order = 0.5
    stochastic = True
    nfe_per_step = 2  # the default: one predictor and one corrector call a step
    default_schedule = "uniform"

    def __init__(self, predictor: str = "reverse_diffusion", corrector: str = "langevin", n_corrector: int = 1,
                 snr: float = 0.16, **base) -> None:
        super().__init__(**base)
        if predictor not in PREDICTORS:
            raise SolverError(f"pc: predictor={predictor!r} is unknown; use one of {', '.join(PREDICTORS)}")
        if corrector not in CORRECTORS:
            raise SolverError(f"pc: corrector={corrector!r} is unknown; use one of {', '.join(CORRECTORS)}")
        if isinstance(n_corrector, bool) or int(n_corrector) != n_corrector or n_corrector < 0:
            raise SolverError(f"pc: n_corrector={n_corrector!r} must be a non-negative integer (Langevin steps a step)")
        if not float(snr) > 0:
            raise SolverError(f"pc: snr={snr!r} must be a positive number (score_sde uses 0.16)")
        self.predictor, self.corrector, self.snr = predictor, corrector, float(snr)
        self.n_corrector = int(n_corrector) if corrector != "none" else 0
        self._predict = PREDICTORS[predictor]()

    def capabilities(self):
        """One predictor call and n_corrector corrector calls a step."""
        return replace(super().capabilities(), nfe_per_step=1 + self.n_corrector)

    def step(self, model, i, t0, t1, x, state, noise):
        if self.n_corrector:
            a = gaussian_step(model.sde, t0, t1, x).alpha_ts ** 2
            for _ in range(self.n_corrector):
                x = langevin_correct(model, t0, x, a, self.snr, noise)
        return self._predict.step(model, i, t0, t1, x, state, noise)
