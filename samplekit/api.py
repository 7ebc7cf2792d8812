"""Registry look-ups on the process-wide registry: ``sk.available``, ``sk.get_sde``, ``sk.get_solver``, ..."""

from __future__ import annotations

from typing import Any

from samplekit.plugins import get_registry
from samplekit.registry import ComponentInfo
from samplekit.solver import Solver, build_solver


def available(kind: str | None = None) -> list[ComponentInfo]:
    """Every registered component (of one kind), with the plugin that gave it."""
    return get_registry().available(kind)


def get_sde(name: str, **params) -> Any:
    """A forward SDE by name: ``get_sde("vp", beta_max=20.0)``."""
    return get_registry().create("sde", name, **params)


def get_solver(name: str, **options) -> Solver:
    """A solver by name, built with its options."""
    return build_solver(get_registry().get("solver", name).factory, name, options)


def get_schedule(name: str):
    """A time-grid function ``fn(sde, n_steps, **options) -> ts``."""
    return get_registry().get("schedule", name).factory


def get_metric(name: str):
    return get_registry().get("metric", name).factory


def get_target(name: str, **options):
    return get_registry().create("target", name, **options)


def get_trace_estimator(name: str, **options):
    return get_registry().create("trace_estimator", name, **options)
