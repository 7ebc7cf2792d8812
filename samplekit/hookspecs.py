"""The hooks a samplekit plugin may implement (pluggy project name ``samplekit``).

Each ``samplekit_register_*`` hook receives ``register(name, factory, **info)``
scoped to the calling plugin, so every component remembers which plugin gave it.
``factory(**options)`` builds the component; ``summary=`` overrides the one-line
summary taken from the factory's docstring.
"""

from __future__ import annotations

from typing import Any, Callable

import pluggy

__all__ = [
    "hookspec",
    "hookimpl",
    "REGISTER_HOOKS",
    "samplekit_register_solvers",
    "samplekit_register_sdes",
    "samplekit_register_schedules",
    "samplekit_register_trace_estimators",
    "samplekit_register_model_loaders",
    "samplekit_register_metrics",
    "samplekit_register_targets",
    "samplekit_register_guidance",
    "samplekit_register_commands",
]

hookspec = pluggy.HookspecMarker("samplekit")
hookimpl = pluggy.HookimplMarker("samplekit")

Register = Callable[..., None]


@hookspec
def samplekit_register_solvers(register: Register) -> None:
    """Register solvers: ``register(name, SolverClass)``; the class declares order, stochastic, nfe_per_step.

    :param register: ``register(name, factory, **info)`` scoped to this plugin.
    """


@hookspec
def samplekit_register_sdes(register: Register) -> None:
    """Register forward SDEs: ``register(name, SDEClass)``, built with its parameters as keywords.

    :param register: ``register(name, factory, **info)`` scoped to this plugin.
    """


@hookspec
def samplekit_register_schedules(register: Register) -> None:
    """Register time grids: ``register(name, fn)`` with ``fn(sde, n_steps, **options) -> ts`` from T down to t_min.

    :param register: ``register(name, factory, **info)`` scoped to this plugin.
    """


@hookspec
def samplekit_register_trace_estimators(register: Register) -> None:
    """Register divergence (trace) estimators for the probability-flow ODE likelihood.

    :param register: ``register(name, factory, **info)`` scoped to this plugin.
    """


@hookspec
def samplekit_register_model_loaders(register: Register) -> None:
    """Register model loaders: ``register(name, fn)`` with ``fn(source, **options) -> ScoreModel``.

    :param register: ``register(name, factory, **info)`` scoped to this plugin.
    """


@hookspec
def samplekit_register_metrics(register: Register) -> None:
    """Register sample-quality metrics: ``fn(samples, reference, **options) -> float``.

    :param register: ``register(name, factory, **info)`` scoped to this plugin.
    """


@hookspec
def samplekit_register_targets(register: Register) -> None:
    """Register benchmark targets (a model plus reference samples, exact where possible).

    :param register: ``register(name, factory, **info)`` scoped to this plugin.
    """


@hookspec
def samplekit_register_guidance(register: Register) -> None:
    """Register guidance methods: score-model wrappers for conditional sampling.

    :param register: ``register(name, factory, **info)`` scoped to this plugin.
    """


@hookspec
def samplekit_register_commands(cli: Any) -> None:
    """Add commands to the ``samplekit`` click group.

    :param cli: the root ``click.Group``.
    """


REGISTER_HOOKS = {
    "solver": "samplekit_register_solvers",
    "sde": "samplekit_register_sdes",
    "schedule": "samplekit_register_schedules",
    "trace_estimator": "samplekit_register_trace_estimators",
    "model_loader": "samplekit_register_model_loaders",
    "metric": "samplekit_register_metrics",
    "target": "samplekit_register_targets",
    "guidance": "samplekit_register_guidance",
}
