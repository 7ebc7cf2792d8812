"""The hooks a samplekit plugin may implement (pluggy project name ``samplekit``).

Each ``samplekit_register_*`` hook receives a ``register`` callable scoped to the
calling plugin, so every component remembers which plugin gave it:

- ``samplekit_register_solvers`` gets a :class:`RegisterSolver`: ``register(SolverClass)``;
  the class declares its name, aliases, capabilities and options.
- every other hook gets a :class:`Register`: ``register(name, factory, **info)``;
  ``factory(**options)`` builds the component and ``summary=`` overrides the one-line
  summary taken from the factory's docstring.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:  # the solver base imports torch; hookspecs stays light for `samplekit --help`
    from samplekit.solver import Solver

__all__ = [
    "REGISTER_HOOKS",
    "Register",
    "RegisterSolver",
    "hookimpl",
    "hookspec",
    "samplekit_register_solvers",
    "samplekit_register_sdes",
    "samplekit_register_schedules",
    "samplekit_register_trace_estimators",
    "samplekit_register_model_loaders",
    "samplekit_register_metrics",
    "samplekit_register_targets",
    "samplekit_register_guidance",
    "samplekit_register_fitters",
    "samplekit_register_commands",
]

hookspec = pluggy.HookspecMarker("samplekit")
hookimpl = pluggy.HookimplMarker("samplekit")


class Register(Protocol):
    """``register(name, factory, **info)``: what every hook but the solver hook receives.

    :param name: the component's name, unique within its kind (a duplicate is an error naming both plugins).
    :param factory: ``factory(**options)`` builds the component (a class or a function).
    :param summary: one line for ``samplekit list``; by default the first line of the factory's docstring.
    :param info: further fields shown by ``samplekit list --json`` (e.g. ``aliases``).
    """

    def __call__(
        self, name: str, factory: Callable[..., Any], /, *, summary: str | None = None, **info: Any
    ) -> None: ...


class RegisterSolver(Protocol):
    """``register(SolverClass)``: what the solver hook receives.

    :param solver_class: a :class:`samplekit.solver.Solver` subclass; its name, aliases, capabilities and
        options are read from the class.
    """

    def __call__(self, solver_class: type[Solver], /) -> None: ...


@hookspec
def samplekit_register_solvers(register: RegisterSolver) -> None:
    """Register solvers: ``register(SolverClass)``; the class declares its name, aliases and capabilities.

    :param register: ``register(SolverClass)`` scoped to this plugin.
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
def samplekit_register_fitters(register: Register) -> None:
    """Register solver-fitting methods for ``sk.fit_solver``: ``register(name, FitterClass)``; the class
    has ``fit(model, nfe, x_T, teacher, budget, **options)`` and ``build(fitted) -> (Solver, ts)``
    (``samplekit.fitted``).

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
    "fitter": "samplekit_register_fitters",
}
