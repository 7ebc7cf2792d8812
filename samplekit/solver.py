"""The solver base: declared capabilities, the budget plan, and the step API (the solver contract).

Writing a solver (a third party reads this first)
-------------------------------------------------
Subclass :class:`Solver`, declare its facts as class attributes (``name``, ``aliases``, ``order``,
``stochastic``, ``nfe_per_step``, ``min_steps``, ``default_schedule``, ``sde_families``), its options as
typed keyword parameters of ``__init__`` (``Literal[...]`` choices and ``Annotated[float, Ge(0)]``
ranges are checked by the core before the solver is built; see ``samplekit.options``), and implement

    plan(nfe, calls_per_eval=1) -> Plan           optional: how a budget of nfe network calls is spent
    init(model, x, ts, noise, plan) -> state       optional: the state carried between steps
    step(model, i, t0, t1, x, state, noise, plan) -> (x, state, denoised)

on the grid ts[0] > ... > ts[n] = t_min (``i`` indexes ts; ``denoised`` is the x0 estimate or None).
The core (``samplekit.sampling``) computes the :class:`Plan` once per run and passes it in, so a solver
keeps no per-run state on itself: ``plan`` is pure, and everything a run needs lives in ``plan`` and
``state``.  ``Plan.per_step`` carries solver-specific per-step details (dpm_fast's orders, restart's
restart schedule).  On a user grid (``ts=``) the core asks :meth:`Solver.plan_for_grid` instead.

The core owns, once for every solver: the loop, the progress bar and ``callback``; the first step
from alpha_t = 0 (``sampling.alpha_zero_step``: a solver never sees t0 with alpha_t0 = 0); NaN/Inf
checks; and the NFE cap: the model a solver receives is metered (``samplekit.metering``), counted at
the network, and a call that would pass ``plan.nfe`` raises :class:`BudgetExceededError` before it is
made.  A step that raises, or returns something other than (x of the input's shape and dtype,
state, denoised), is reported naming the solver, its plugin and the step.

An adaptive solver (``adaptive = True``) implements instead

    solve(model, x, noise, plan, on_step) -> x at t_min

calling ``on_step(t0, t1, x, denoised)`` after each accepted step (the core turns it into the
progress bar and the user's callback); its tolerances set the cost and ``plan.nfe`` is the cap the
metered model enforces.  Step-size control belongs beside the solver: ``samplekit.step_size``.

Registering is ``register(SolverClass)`` in a plugin's ``samplekit_register_solvers`` hook.  A class
written against the previous contract (``steps_for(nfe)``, or ``init``/``step``/``solve`` without
``plan``) is refused when registered or built, with a :class:`SolverError` saying what to change.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch

from samplekit.errors import ArgumentTypeError, OptionError, SolverError
from samplekit.noise import NoiseSource
from samplekit.options import OptionSpec, check_options, option_specs
from samplekit.score import ScoreModel
from samplekit.sde import SDE

Tensor = torch.Tensor


@dataclass(frozen=True)
class Plan:
    """How one run spends its budget, computed by the core before the run and passed to the solver.

    ``n_steps``: grid steps (0 for an adaptive solver); ``nfe``: the cap on network calls that the
    core enforces; ``calls_per_eval``: network calls per model evaluation (> 1 under guidance);
    ``per_step``: solver-specific per-step details (e.g. dpm_fast's orders)."""

    n_steps: int
    nfe: int
    calls_per_eval: int = 1
    per_step: tuple = ()


@dataclass(frozen=True)
class StepInfo:
    """What a callback receives after each step (``n_steps`` is None for an adaptive solver)."""

    step: int
    n_steps: int | None
    t: float
    t_next: float
    x: Tensor
    denoised: Tensor | None
    nfe: int


@dataclass(frozen=True)
class Capabilities:
    """What one solver instance can do; the class attributes declare it, options may change it."""

    order: float
    stochastic: bool
    adaptive: bool
    nfe_per_step: int
    min_steps: int
    sde_families: tuple[str, ...]
    samples_target: bool

    def as_dict(self) -> dict:
        return {**asdict(self), "sde_families": list(self.sde_families)}


class Solver:
    """Base class of every solver.

    The class is the single source of a solver's facts: class attributes declare its name, aliases
    and capabilities; the typed keyword parameters of ``__init__`` (with defaults) are its options;
    a capability that depends on an option is computed by overriding :meth:`capabilities`.
    Registering is ``register(SolverClass)`` in a plugin's ``samplekit_register_solvers``.
    """

    name: ClassVar[str] = "solver"
    #: its names in k-diffusion, diffusers and ComfyUI; ``sk.sample(solver=...)`` accepts them too
    aliases: ClassVar[tuple[str, ...]] = ()
    #: the peer's conventions selected by its name: alias -> option values that name defaults to, e.g.
    #: ``{"sample_dpmpp_2m": {"lower_order_final": False}}``; the solver's own name keeps samplekit's
    #: defaults, and options given by the caller win over both (applied in ``build_solver``)
    alias_options: ClassVar[dict[str, dict[str, Any]]] = {}
    #: True if ``step`` takes a step onto t1 = 0 (sigma = 0, the final entry of a k-diffusion sigma
    #: list) itself; otherwise the core takes that step as x = x0(x, t0), one call (``sampling.step_to_zero``)
    steps_to_zero: ClassVar[bool] = False
    order: ClassVar[float] = 1.0
    stochastic: ClassVar[bool] = False
    adaptive: ClassVar[bool] = False
    nfe_per_step: ClassVar[int] = 1
    min_steps: ClassVar[int] = 1
    default_schedule: ClassVar[str] = "uniform"
    #: None = every SDE; otherwise the SDE families it handles: "vp" (alpha_t < 1) and/or "ve" (alpha_t = 1)
    sde_families: ClassVar[tuple[str, ...] | None] = None
    #: False for a baseline that does not sample p_0 however large the budget (plain Langevin on a
    #: fixed score gets multimodal weights wrong); the every-solver noise-floor test then skips it.
    samples_target: ClassVar[bool] = True

    def __new__(cls, *args: Any, **options: Any):
        """Check the declared options that are given (type, ``Literal`` choices, ``Annotated`` ranges)
        before ``__init__`` runs, however the solver is built (by name, or by its class)."""
        specs = option_specs(cls)
        for name, value in options.items():
            if name in specs:
                try:
                    specs[name].check(value, f"solver {cls.name!r}")
                except OptionError as exc:
                    raise SolverError(str(exc)) from None
        return super().__new__(cls)

    def __init__(
        self, schedule: str | None = None, schedule_options: dict | None = None, denoise_final: bool = False
    ) -> None:
        self.schedule = schedule or self.default_schedule
        self.schedule_options = dict(schedule_options or {})
        self.denoise_final = bool(denoise_final)

    # --- capabilities -----------------------------------------------------------------------
    def capabilities(self) -> Capabilities:
        """This instance's capabilities: the class declarations, unless an option changes one
        (override and ``dataclasses.replace`` the field)."""
        cls = type(self)
        return Capabilities(
            float(cls.order),
            bool(cls.stochastic),
            bool(cls.adaptive),
            int(cls.nfe_per_step),
            int(cls.min_steps),
            tuple(cls.sde_families or ("vp", "ve")),
            bool(cls.samples_target),
        )

    @classmethod
    def describe(cls) -> dict:
        """What the registry lists: aliases, the default instance's capabilities, the typed options."""
        cls.check_alias_options()
        return {
            "aliases": list(cls.aliases),
            "alias_options": {alias: dict(options) for alias, options in cls.alias_options.items()},
            **cls().capabilities().as_dict(),
            "options": {s.name: s.describe() for s in cls.option_specs().values()},
        }

    @classmethod
    def check_alias_options(cls) -> None:
        """Every key of ``alias_options`` is one of ``aliases`` and its options are declared, well-typed ones."""
        for alias, options in cls.alias_options.items():
            if alias not in cls.aliases:
                raise SolverError(
                    f"solver {cls.name!r} declares alias_options for {alias!r}, which is not one of its aliases "
                    f"({', '.join(cls.aliases) or 'none'}); add it to aliases or drop it"
                )
            try:
                check_options(cls, f"solver {cls.name!r} (alias {alias!r})", options)
            except OptionError as exc:
                raise SolverError(str(exc)) from None

    @classmethod
    def options_for(cls, name: str, options: dict) -> dict:
        """The options a solver looked up by ``name`` is built with: the alias's peer conventions
        (``alias_options``), then ``options`` over them."""
        return {**cls.alias_options.get(name, {}), **options}

    @classmethod
    def option_specs(cls) -> dict[str, OptionSpec]:
        """The declared options: every typed keyword parameter of ``__init__`` along the MRO."""
        return option_specs(cls)

    def check_sde(self, sde: SDE) -> None:
        """Raise a readable error if this solver cannot integrate ``sde``."""
        families = self.capabilities().sde_families
        family = "ve" if sde.variance_exploding else "vp"
        if family not in families:
            raise SolverError(
                f"solver {self.name!r} does not support {sde!r} ({family}-type); it handles "
                f"{' and '.join(families)}-type SDEs — pick another solver or SDE"
            )

    # --- the plan ------------------------------------------------------------------------------
    def plan(self, nfe: int, calls_per_eval: int = 1) -> Plan:
        """The plan that spends at most ``nfe`` network calls: ``nfe // calls_per_eval`` evaluations,
        one kept for ``denoise_final``, ``nfe_per_step`` a step.  Pure: sets nothing on ``self``."""
        caps = self.capabilities()
        if caps.adaptive:
            return Plan(0, nfe, calls_per_eval)
        evals = nfe // calls_per_eval
        steps = (evals - self._final_evals()) // caps.nfe_per_step
        if steps < caps.min_steps:
            need = caps.min_steps * caps.nfe_per_step + self._final_evals()
            self.refuse_budget(
                nfe, calls_per_eval, need, f"{caps.nfe_per_step} per step, {caps.min_steps} step(s) minimum"
            )
        return Plan(steps, nfe, calls_per_eval)

    def plan_for_grid(self, n_steps: int, calls_per_eval: int = 1) -> Plan:
        """The plan for a grid given as is (``ts=``) of ``n_steps`` steps: ``nfe`` is what it needs."""
        caps = self.capabilities()
        if n_steps < caps.min_steps:
            raise SolverError(f"ts has {n_steps} step(s); solver {self.name!r} needs at least {caps.min_steps}")
        need = (n_steps * caps.nfe_per_step + self._final_evals()) * calls_per_eval
        return Plan(n_steps, need, calls_per_eval)

    def _final_evals(self) -> int:
        return 1 if self.denoise_final else 0

    def refuse_budget(self, nfe: int, calls_per_eval: int, need_evals: int, detail: str) -> None:
        """Raise the error for a budget below ``need_evals`` model evaluations (``detail``: why)."""
        final = ", +1 for denoise_final" if self.denoise_final else ""
        if calls_per_eval == 1:
            raise SolverError(
                f"nfe={nfe} is too small for solver {self.name!r}: it needs at least {need_evals} ({detail}{final}); "
                "raise nfe"
            )
        raise SolverError(
            f"nfe={nfe} is too small for solver {self.name!r}: it needs at least {need_evals} model evaluations "
            f"({detail}{final}) of {calls_per_eval} network calls each = {need_evals * calls_per_eval}; raise nfe"
        )

    # --- step API (fixed-step solvers) -------------------------------------------------------
    def init(self, model: ScoreModel, x: Tensor, ts: Tensor, noise: NoiseSource, plan: Plan) -> Any:
        return None

    def step(
        self,
        model: ScoreModel,
        i: int,
        t0: Tensor,
        t1: Tensor,
        x: Tensor,
        state: Any,
        noise: NoiseSource,
        plan: Plan,
    ) -> tuple[Tensor, Any, Tensor | None]:
        raise NotImplementedError

    # --- adaptive solvers ------------------------------------------------------------------
    def solve(
        self,
        model: ScoreModel,
        x: Tensor,
        noise: NoiseSource,
        plan: Plan,
        on_step: Callable[[Tensor, Tensor, Tensor, Tensor | None], None],
    ) -> Tensor:
        raise NotImplementedError

    def options(self) -> dict:
        """The options this instance was built with (for results tables): each declared option's value."""
        return {name: getattr(self, name) for name in self.option_specs() if name in vars(self)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.options().items())})"


def resolve_solver(solver: str | Solver, options: dict) -> Solver:
    """The one solver look-up: a registered name (or alias) built with ``options``, or a Solver instance
    used as given (options are then refused: they belong to its constructor)."""
    if isinstance(solver, Solver):
        check_contract(type(solver))
        if options:
            raise SolverError(
                f"solver options {sorted(options)} were given with a Solver instance; "
                "set them when building it, or pass the solver by name"
            )
        return solver
    if not isinstance(solver, str):
        raise ArgumentTypeError(
            f"solver={solver!r} must be a registered name (see `samplekit list solver`) or a Solver"
        )
    from samplekit.plugins import get_registry  # the registry loads the plugins, which import this module

    return build_solver(get_registry().get("solver", solver).factory, solver, options)


def check_contract(cls: type) -> None:
    """Refuse a Solver class written against the previous contract, saying what to change."""
    if not (isinstance(cls, type) and issubclass(cls, Solver)):
        return
    label = f"solver class {cls.__module__}.{cls.__qualname__}"
    fixes = []
    if hasattr(cls, "steps_for"):
        fixes.append("replace steps_for(nfe) -> int by plan(nfe, calls_per_eval=1) -> samplekit.solver.Plan")
    methods = ("solve",) if getattr(cls, "adaptive", False) else ("init", "step")
    for method in methods:
        try:
            params = inspect.signature(getattr(cls, method)).parameters
        except (TypeError, ValueError):
            continue
        if "plan" not in params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            fixes.append(f"{method}() must take the plan: see the signature in samplekit.solver.Solver.{method}")
    if fixes:
        raise SolverError(
            f"{label} is written against an old solver contract: {'; '.join(fixes)} "
            "(the contract is described in the samplekit.solver module docstring)"
        )


def build_solver(factory, name: str, options: dict) -> Solver:
    """Build a registered solver looked up by ``name`` (its name or an alias, whose ``alias_options`` then
    apply under ``options``): options checked against its declared types before it is built."""
    check_contract(factory)
    if isinstance(factory, type) and issubclass(factory, Solver):
        options = factory.options_for(name, options)
        try:
            options = check_options(factory, f"solver {name!r}", options)
        except OptionError as exc:
            raise SolverError(str(exc)) from None
    solver = factory(**options)
    if not isinstance(solver, Solver):
        raise SolverError(f"solver {name!r} was built as {type(solver).__name__}, not a samplekit Solver")
    return solver
