"""torchdiffeq, in one place: imported when first needed, its method check, and integration between two times.

Used by the likelihood (probability-flow ODE from t_min up to T) and by the black-box ODE solvers of
the ``samplekit_torchdiffeq`` plugin (from T down to t_min).  The score is only defined on
[t_min, T], so the adaptive Runge-Kutta methods are told to land their last step on the end time
(``step_t``) and given a first step instead of the initial-step heuristic, which may probe outside.
"""

from __future__ import annotations

import math

import torch

from samplekit.errors import InvalidArgumentError

ADAPTIVE_RK = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun")


def odeint():
    """torchdiffeq.odeint, or an ImportError naming the extra to install."""
    try:
        from torchdiffeq import odeint as _odeint
    except ImportError as exc:  # pragma: no cover - exercised by monkeypatching in the tests
        raise ImportError(
            "the probability-flow ODE (likelihood, ode_* solvers) needs torchdiffeq; "
            "install it with `pip install samplekit[ode]` (or `pip install torchdiffeq`)"
        ) from exc
    return _odeint


def methods() -> list[str]:
    """The names of torchdiffeq's methods."""
    odeint()
    from torchdiffeq._impl.odeint import SOLVERS

    return sorted(SOLVERS)


def check_ode(method: str, rtol, atol) -> None:
    """Raise a ValueError naming the argument if ``method`` is not a torchdiffeq method or a tolerance is bad."""
    known = methods()
    if method not in known:
        raise InvalidArgumentError(f"method={method!r} is not a torchdiffeq method; use one of {', '.join(known)}")
    for name, value in (("rtol", rtol), ("atol", atol)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise InvalidArgumentError(f"{name}={value!r} must be a positive tolerance, e.g. 1e-5")


def integrate(func, state: tuple, t0: float, t1: float, method: str, rtol, atol, options: dict | None = None):
    """The state (a tuple of tensors) at t1 of the ODE d state/dt = func(t, state) started at t0 (either direction)."""
    like = state[0]
    ts = torch.tensor([t0, t1], dtype=like.dtype, device=like.device)
    if method in ADAPTIVE_RK:
        options = {"step_t": ts[1:], "first_step": 1e-3 * abs(t1 - t0), **(options or {})}
    out = odeint()(func, state, ts, method=method, rtol=rtol, atol=atol, options=options)
    return tuple(o[-1] for o in out)
