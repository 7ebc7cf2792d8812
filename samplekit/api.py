"""Registry look-ups on the process-wide registry: ``sk.available``, ``sk.get_sde``, ``sk.get_solver``, ..."""

from __future__ import annotations

from typing import Any, cast

from samplekit.options import OptionError, parse_options
from samplekit.plugins import get_registry
from samplekit.registry import ComponentInfo
from samplekit.solver import Solver, resolve_solver


def available(kind: str | None = None) -> list[ComponentInfo]:
    """Every registered component (of one kind), with the plugin that gave it."""
    return get_registry().available(kind)


def get_sde(name: str, **params) -> Any:
    """A forward SDE by name: ``get_sde("vp", beta_max=20.0)``."""
    return get_registry().create("sde", name, **params)


def get_solver(name: str, **options) -> Solver:
    """A solver by name, built with its options."""
    return resolve_solver(name, options)


def solver_options_from_text(name: str, pairs) -> dict:
    """Command-line ``KEY=VALUE`` texts parsed against the declared option types of solver ``name``
    (``denoise_final=False`` is the bool False, ``eta=abc`` for a float option is refused)."""
    texts = {}
    for pair in pairs:
        key, sep, value = str(pair).partition("=")
        if not sep or not key:
            raise OptionError(f"--option {pair!r} is not KEY=VALUE, e.g. --option denoise_final=true")
        texts[key] = value
    cls = get_registry().get("solver", name).factory  # a Solver subclass: register(SolverClass) checks it
    return parse_options(cast(type, cls), f"solver {name!r}", texts)


def get_schedule(name: str):
    """A time-grid function ``fn(sde, n_steps, **options) -> ts``."""
    return get_registry().get("schedule", name).factory


def get_metric(name: str):
    return get_registry().get("metric", name).factory


def get_target(name: str, **options):
    return get_registry().create("target", name, **options)


def get_trace_estimator(name: str, **options):
    return get_registry().create("trace_estimator", name, **options)
