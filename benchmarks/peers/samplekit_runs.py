"""samplekit's own solvers, picked from the registry at run time: whatever is registered when this runs.

Every fixed-step solver runs with its default schedule and with ``schedule="karras"`` and
``schedule="logsnr"``, on each SDE of ``SDES``, at each budget (``sk.sample(..., nfe=budget)``; it
spends at most the budget and reports what it spent).  With ``denoise_final=(False, True)`` each fixed-step
configuration also runs with the base option ``denoise_final=True`` (a last Tweedie step
x0 = E[x0 | x_{t_min}] = (x + sigma^2 score) / alpha at t_min, one network call counted in the budget, as every
k-diffusion sampler ends); its setting gets a ``+df`` suffix, e.g. ``vp/karras+df``.  Adaptive solvers run
at a few tolerances with twice the largest budget as their cap and are placed at the NFE they really spent.
x_T = prior_std * z with the z every library shares; the solver's own noise comes from ``seed``.
"""

from __future__ import annotations

from common import Problem, Record, timed_run

import samplekit as sk

SDES = {"vp": sk.VPSDE, "edm": sk.EDMSDE, "ve": sk.VESDE}
SCHEDULES = (None, "karras", "logsnr")  # None: the solver's default
TOLERANCES = (1e-2, 1e-3)
OPT_SAMPLES = 128  # schedule="optimized": the optimizer's batch of x_T
OPT_COST = 30  # ... and its cap on network calls: OPT_COST x budget + 300 (each call on OPT_SAMPLES points)
ADAPTIVE_CAP = 2  # adaptive solvers may spend up to this many times the largest budget (placed at real NFE)


def solvers() -> tuple[list, list]:
    """(fixed-step, adaptive) ComponentInfos of the registered solvers."""
    found = sk.available("solver")
    return ([c for c in found if not c.info.get("adaptive")], [c for c in found if c.info.get("adaptive")])


DENOISE_FINAL = {"off": (False,), "on": (True,), "both": (False, True)}


def runs(problem: Problem, budgets, sdes=("vp", "edm"), only=None, schedules=SCHEDULES, denoise_final=(False,)):
    fixed, adaptive = solvers()
    if only:
        fixed, adaptive = [c for c in fixed if c.name in only], [c for c in adaptive if c.name in only]
    for sde_name in sdes:
        sde = SDES[sde_name]()
        for info in fixed:
            default = info.factory().schedule
            for schedule in schedules:
                if schedule == default and None in schedules:
                    continue  # the default run covers it
                for df in denoise_final:
                    if df and schedule == "optimized":
                        continue  # the optimizer fits its grid to the solver without the final denoise
                    for budget in budgets:
                        record = Record(
                            "samplekit",
                            info.name,
                            f"{sde_name}/{schedule or default}" + ("+df" if df else ""),
                            problem.name,
                            budget,
                            problem.seed,
                            problem.n,
                            extra={"plugin": info.plugin, "denoise_final": df},
                        )
                        options = {"schedule": schedule} if schedule else {}
                        if df:
                            options["denoise_final"] = True
                        yield timed_run(
                            problem, record, lambda: _sample(problem, sde, info.name, budget, options, record)
                        )
        cap = ADAPTIVE_CAP * max(budgets)
        for info in adaptive:
            accepted = set(info.factory.option_specs())
            for tol in TOLERANCES if {"rtol", "atol"} <= accepted else (None,):
                options = {"rtol": tol, "atol": tol} if tol else {}
                record = Record(
                    "samplekit",
                    info.name,
                    f"{sde_name}/tol={tol}",
                    problem.name,
                    None,
                    problem.seed,
                    problem.n,
                    extra={"plugin": info.plugin, "cap": cap},
                )
                yield timed_run(problem, record, lambda: _sample(problem, sde, info.name, cap, options))


def _sample(problem: Problem, sde, solver: str, budget: int, options: dict, record: Record | None = None):
    model = sk.ScoreModel.from_score(
        lambda x, t: problem.score(x, *sde.marginal(t)), sde, problem.mixture.shape, name="exact_score"
    )  # = problem.mixture.score_model(sde), fast path
    x_T = sde.prior_std * problem.z
    if options.get("schedule") == "optimized":
        # the grid is fitted first (its own x_T batch and seed, not the benchmark's), its cost recorded apart;
        # then the benchmark's sample runs on it with ts= and spends only the budget
        ts, rep = sk.optimize_schedule(
            model,
            solver,
            budget,
            num_samples=OPT_SAMPLES,
            seed=1000 + problem.seed,
            max_nfe=OPT_COST * budget + 300,
            return_report=True,
        )
        if record is not None:
            record.extra.update(
                optimizer_nfe=rep.nfe_spent, optimizer_start=rep.start, optimizer_seconds=round(rep.seconds, 2)
            )
        res = sk.sample(model, solver=solver, x_T=x_T, ts=ts, seed=problem.seed, progress=False)
        return res.samples, res.nfe
    res = sk.sample(model, solver=solver, nfe=budget, x_T=x_T, seed=problem.seed, progress=False, **options)
    return res.samples, res.nfe
