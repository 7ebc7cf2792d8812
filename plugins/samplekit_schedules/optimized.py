"""``optimized``: the grid of ``sk.optimize_schedule`` for one model, solver and budget, cached on disk.

A schedule function only receives (sde, n_steps, **options), so the model and the solver come in as
schedule options:

    sk.sample(model, solver="dpmpp_2m", nfe=6, schedule="optimized",
              schedule_options={"model": model, "solver": "dpmpp_2m"})

``solver`` is a registered name or a Solver instance (its options are part of the key); further options
(``num_samples``, ``seed``, ``max_nfe``, ...) go to ``optimize_schedule``.  ``n_steps`` is honoured: the
grid is optimised for the solver's budget of n_steps steps (n_steps x nfe_per_step calls).

Cache: ``$SAMPLEKIT_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/samplekit``, else ``~/.cache/samplekit``
(or the option ``cache_dir``; ``cache=False`` turns it off), one JSON file
``schedules/<key>.json`` per grid, key = sha256 of the model's fingerprint (its weights' bytes, or an exact
target's parameters), the SDE, the solver with its options, the step count and the optimiser's options.
A hit calls the network not at all.
"""

from __future__ import annotations

import hashlib
import json

import torch

from samplekit.errors import InvalidArgumentError
from samplekit.fingerprint import _feed, default_cache_dir  # noqa: F401  (default_cache_dir: imported from here too)
from samplekit.schedule_optimizer import optimize_schedule
from samplekit.sde import SDE


def fingerprint(model, sde: SDE, solver, n_steps: int, options: dict) -> str:
    """sha256 of the model's content (net, parametrisation, bound inputs), the SDE, solver and options."""
    from samplekit.solver import resolve_solver

    h = hashlib.sha256()
    _feed(h, {k: v for k, v in vars(model).items() if k not in ("sde", "_counter")}, scalars=False)
    _feed(h, sde)
    s = resolve_solver(solver, {})
    _feed(h, [s.name, {k: v for k, v in s.options().items() if k not in ("schedule", "schedule_options")}])
    _feed(h, [int(n_steps), options])
    return h.hexdigest()


def optimized(
    sde: SDE, n_steps: int, model=None, solver=None, cache: bool = True, cache_dir=None, **options
) -> torch.Tensor:
    from samplekit.score import ScoreModel
    from samplekit.solver import resolve_solver

    if not isinstance(model, ScoreModel) or solver is None:
        raise InvalidArgumentError(
            "schedule 'optimized' needs the model and the solver as schedule options: "
            "schedule_options={'model': model, 'solver': 'dpmpp_2m'}"
        )
    if abs(sde.T - model.sde.T) > 1e-12 or abs(sde.t_min - model.sde.t_min) > 1e-12:
        raise InvalidArgumentError(
            f"schedule 'optimized' serves the model's full range [t_min, T]; this grid is for "
            f"[{sde.t_min:g}, {sde.T:g}] (img2img): pass ts= from sk.optimize_schedule instead"
        )
    solver_obj = resolve_solver(solver, {})
    nfe = int(n_steps) * solver_obj.capabilities().nfe_per_step + (1 if solver_obj.denoise_final else 0)
    path = None
    if cache:
        key = fingerprint(model, model.sde, solver_obj, n_steps, options)
        path = default_cache_dir(cache_dir) / "schedules" / f"{key}.json"
        if path.exists():
            grid = torch.tensor(json.loads(path.read_text())["ts"], dtype=torch.float64)
            if grid.shape == (int(n_steps) + 1,):
                return grid
    ts, report = optimize_schedule(model, solver_obj, nfe, return_report=True, **options)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "ts": ts.tolist(),
                    "solver": solver_obj.name,
                    "n_steps": int(n_steps),
                    "loss": report.loss,
                    "start": report.start,
                    "start_loss": report.start_loss,
                    "nfe_spent": report.nfe_spent,
                    "objective": report.objective,
                }
            )
        )
        tmp.replace(path)
    return ts
