"""Solvers for the conditioning proofs: an ODE solver (``stochastic = False``) and an SDE solver, fixed-step,
that handle VP SDEs, picked from the registry by their declared capabilities (preferred names first)."""

from __future__ import annotations

import samplekit as sk

PREFERRED = {False: ("ode_heun", "edm_heun", "dpmpp_2m", "ddim", "ode_euler"), True: ("euler_maruyama", "ddpm")}


def fixed_step(stochastic: bool) -> list[str]:
    return [
        c.name
        for c in sk.available("solver")
        if bool(c.info.get("stochastic")) == stochastic
        and not c.info.get("adaptive")
        and "vp" in (c.info.get("sde_families") or ["vp"])
        and c.info.get("samples_target", True)
    ]


def pick(stochastic: bool) -> str:
    """A registered solver name with that ``stochastic`` flag."""
    names = fixed_step(stochastic)
    for name in PREFERRED[stochastic]:
        if name in names:
            return name
    if names:
        return names[0]
    raise LookupError(f"no {'stochastic' if stochastic else 'deterministic'} fixed-step solver is registered")


def label(solver) -> str:
    return solver if isinstance(solver, str) else solver.name
