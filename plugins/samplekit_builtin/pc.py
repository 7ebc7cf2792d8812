"""Predictor-corrector sampling (Song et al. 2021), from t0 = t to t1 = s on the solver's grid:

    corrector: n_corrector Langevin steps at t, each with its own z ~ N(0, I):
        x <- x + e s(x, t) + sqrt(2 e) z,   e = 2 a r^2,   a = alpha_{t|s}^2  (1 on VE SDEs; 1 - beta_i on VP),
        r = snr sigma_t                                   (step_size="noise_level", the default), or
        r = snr mean_b|z_b| / mean_b|s(x_b, t)|           (step_size="batch_norms", score_sde's rule);
    predictor: one reverse-SDE step t -> s (``reverse_diffusion``, ``euler_maruyama`` or ``ancestral``,
        see ``predictors``).

Corrector then predictor, as score_sde's ``pc_sampler``, so the last step ends on t_min with a predictor.
The step size.  score_sde's ratio of batch-mean norms couples the samples: a sample's step, hence the
sample, depends on the batch it is drawn in (a row differed by 0.84), so per-sample seeds cannot be
honoured; ``step_size="batch_norms"`` keeps it for reproducing score_sde and refuses per-sample seeds before
any network call.  The default gives every sample the step score_sde's ratio tends to for noise-dominated
x, where |z| ~ sqrt(d) and |s| ~ sqrt(d) / sigma_t: r = snr sigma_t, the same for every sample and
independent of the batch.  A ratio from each sample's own norms, |z_b| / |s_b|, is not a fix: a step that
depends on the sample's state and on its own z changes the Langevin kernel's stationary law (and
|s| -> 0 at the modes gives unbounded steps).  In high dimension near the data score_sde's ratio is larger than
sigma_t (|s| ~ sqrt(d_normal) / sigma_t), so this step is the more cautious one there.
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


STEP_SIZES = ("noise_level", "batch_norms")


def langevin_correct(model, t, x, a, snr: float, noise, step_size: str = "noise_level"):
    """One Langevin corrector step at time t with signal-to-noise ratio ``snr`` (module docstring)."""
    score = model.predict(x, t).score
    z = noise.randn_like(x)
    if step_size == "batch_norms":
        tiny = torch.finfo(x.dtype).tiny
        ratio = snr * z.flatten(1).norm(dim=1).mean() / score.flatten(1).norm(dim=1).mean().clamp_min(tiny)
    else:
        ratio = snr * model.sde.marginal(t)[1].to(dtype=x.dtype, device=x.device)
    e = 2 * a * ratio * ratio
    return x + e * score + (2 * e).sqrt() * z


class PredictorCorrector(Solver):
    """Predictor-corrector sampler (options predictor, corrector, n_corrector, snr, step_size)."""

    name = "pc"
    order = 0.5
    stochastic = True
    nfe_per_step = 2  # the default: one predictor and one corrector call a step
    default_schedule = "uniform"

    def __init__(
        self,
        predictor: str = "reverse_diffusion",
        corrector: str = "langevin",
        n_corrector: int = 1,
        snr: float = 0.16,
        step_size: str = "noise_level",
        **base,
    ) -> None:
        super().__init__(**base)
        if predictor not in PREDICTORS:
            raise SolverError(f"pc: predictor={predictor!r} is unknown; use one of {', '.join(PREDICTORS)}")
        if corrector not in CORRECTORS:
            raise SolverError(f"pc: corrector={corrector!r} is unknown; use one of {', '.join(CORRECTORS)}")
        if isinstance(n_corrector, bool) or int(n_corrector) != n_corrector or n_corrector < 0:
            raise SolverError(f"pc: n_corrector={n_corrector!r} must be a non-negative integer (Langevin steps a step)")
        if not float(snr) > 0:
            raise SolverError(f"pc: snr={snr!r} must be a positive number (score_sde uses 0.16)")
        if step_size not in STEP_SIZES:
            raise SolverError(f"pc: step_size={step_size!r} is unknown; use one of {', '.join(STEP_SIZES)}")
        self.predictor, self.corrector, self.snr, self.step_size = predictor, corrector, float(snr), step_size
        self.n_corrector = int(n_corrector) if corrector != "none" else 0
        self._predict = PREDICTORS[predictor]()

    def capabilities(self):
        """One predictor call and n_corrector corrector calls a step."""
        return replace(super().capabilities(), nfe_per_step=1 + self.n_corrector)

    def init(self, model, x, ts, noise, plan):
        if self.n_corrector and self.step_size == "batch_norms" and noise.per_sample:
            raise SolverError(
                "pc: step_size='batch_norms' couples the samples of a batch (score_sde's batch-mean "
                "norms), so one seed per sample cannot make a sample independent of its batch; pass "
                "seed=<int>, or keep the default step_size='noise_level'"
            )
        return super().init(model, x, ts, noise, plan)

    def step(self, model, i, t0, t1, x, state, noise, plan):
        if self.n_corrector:
            a = gaussian_step(model.sde, t0, t1, x).alpha_ts ** 2
            for _ in range(self.n_corrector):
                x = langevin_correct(model, t0, x, a, self.snr, noise, self.step_size)
        return self._predict.step(model, i, t0, t1, x, state, noise, plan)
