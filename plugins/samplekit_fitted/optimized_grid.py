"""The grid-only baseline: ``sk.optimize_schedule`` (derivative-free coordinate descent on the grid of a
base solver, ``samplekit.schedule_optimizer``) run on the fit's own x_T, as a fitted sampler."""

from __future__ import annotations

from samplekit.fitted import FIT_SEED_OFFSET, FitResult
from samplekit.schedule_optimizer import optimize_schedule
from samplekit.solver import resolve_solver
from samplekit_fitted.training import Fitter


class OptimizedGrid(Fitter):
    """The existing grid optimiser (coordinate descent, no gradients) for a base solver (default ``unipc``)."""

    name = "optimized"

    def __init__(self, base: str = "unipc", seed: int = 0) -> None:
        resolve_solver(base, {})
        self.base, self.seed = str(base), int(seed)

    def fit(self, model, nfe, x_T, teacher, cap):
        left = max(cap.max_nfe - (model.nfe - cap.nfe0), 1)
        ts, report = optimize_schedule(
            model,
            self.base,
            nfe,
            num_samples=x_T.shape[0],
            seed=self.seed + FIT_SEED_OFFSET,
            max_nfe=left,
            return_report=True,
        )
        from samplekit.timegrid import make_grid

        probe = resolve_solver(self.base, {})
        probe.schedule = report.start
        ts0 = make_grid(probe, model, len(ts) - 1)
        return FitResult(
            self.base,
            {"base": self.base},
            ts.tolist(),
            f"{self.base} on {report.start}",
            {"base": self.base},
            ts0.tolist(),
            {"evaluations": report.evaluations},
        )

    @classmethod
    def build(cls, fitted):
        return resolve_solver(fitted.params["base"], {})
