"""Solvers for the conditioning proofs, picked from the registry by their declared capabilities.

An ODE solver (``stochastic = False``) and an SDE solver (``stochastic = True``), fixed-step, that
handle VP SDEs; preferred names first.  If no deterministic solver is registered yet, a minimal
probability-flow Heun solver defined here stands in, so the ODE proof still runs.
"""

from __future__ import annotations

import samplekit as sk
from samplekit.reverse import probability_flow_drift
from samplekit.solver import Solver

PREFERRED = {False: ("ode_heun", "edm_heun", "dpmpp_2m", "ddim", "ode_euler"), True: ("euler_maruyama", "ddpm")}


class _FallbackHeun(Solver):
    """Heun on the probability-flow ODE (test-local stand-in, used only if none is registered)."""

    name = "test_pf_heun"
    order = 2.0
    nfe_per_step = 2

    def step(self, model, i, t0, t1, x, state, noise):
        h = t1 - t0
        d0, pred = probability_flow_drift(model, x, t0)
        d1, _ = probability_flow_drift(model, x + h * d0, t1)
        return x + h * (d0 + d1) / 2, state, pred.x0


def fixed_step(stochastic: bool) -> list[str]:
    return [c.name for c in sk.available("solver")
            if bool(c.info.get("stochastic")) == stochastic and not c.info.get("adaptive")
            and "vp" in (c.info.get("sde_families") or ["vp"])]


def pick(stochastic: bool):
    """A registered solver name with that ``stochastic`` flag, or the fallback ODE solver instance."""
    names = fixed_step(stochastic)
    for name in PREFERRED[stochastic]:
        if name in names:
            return name
    if names:
        return names[0]
    if not stochastic:
        return _FallbackHeun()
    raise LookupError("no stochastic fixed-step solver is registered")


def label(solver) -> str:
    return solver if isinstance(solver, str) else solver.name
