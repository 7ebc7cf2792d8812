"""The solver base: declared capabilities, the budget plan, and the step API.

A fixed-step solver implements the diffrax-shaped step API
    init(model, x, ts, noise) -> state
    step(model, i, t0, t1, x, state, noise) -> (x, state, denoised)
walking the grid ts[0] = T > ... > ts[n] = t_min; the loop, progress bar, callback,
NFE accounting and finiteness checks live once in ``samplekit.sampling``.
An adaptive solver (``adaptive = True``) implements ``solve(model, x, noise, max_nfe)`` instead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch

from samplekit.errors import ArgumentTypeError, SamplekitError
from samplekit.noise import NoiseSource
from samplekit.options import OptionError, OptionSpec, check_options, option_specs
from samplekit.score import ScoreModel
from samplekit.sde import SDE

Tensor = torch.Tensor


class SolverError(SamplekitError, ValueError):
    """A solver cannot run as asked (budget, SDE, options)."""


@dataclass(frozen=True)
class StepInfo:
    """What a callback receives after each step."""

    step: int
    n_steps: int
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
        return {
            "aliases": list(cls.aliases),
            **cls().capabilities().as_dict(),
            "options": {s.name: {"type": s.type_name, "default": s.default} for s in cls.option_specs().values()},
        }

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

    def steps_for(self, nfe: int) -> int:
        """The number of grid steps that spend at most ``nfe`` network calls."""
        caps = self.capabilities()
        budget = nfe - (1 if self.denoise_final else 0)
        steps = budget // caps.nfe_per_step
        if steps < caps.min_steps:
            need = caps.min_steps * caps.nfe_per_step + (1 if self.denoise_final else 0)
            raise SolverError(
                f"nfe={nfe} is too small for solver {self.name!r}: it needs at least {need} "
                f"({caps.nfe_per_step} per step, {caps.min_steps} step(s) minimum"
                f"{', +1 for denoise_final' if self.denoise_final else ''}); raise nfe"
            )
        return steps

    # --- step API (fixed-step solvers) -------------------------------------------------------
    def init(self, model: ScoreModel, x: Tensor, ts: Tensor, noise: NoiseSource) -> Any:
        return None

    def step(
        self, model: ScoreModel, i: int, t0: Tensor, t1: Tensor, x: Tensor, state: Any, noise: NoiseSource
    ) -> tuple[Tensor, Any, Tensor | None]:
        raise NotImplementedError

    # --- adaptive solvers ------------------------------------------------------------------
    def solve(self, model: ScoreModel, x: Tensor, noise: NoiseSource, max_nfe: int | None) -> Tensor:
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


def build_solver(factory, name: str, options: dict) -> Solver:
    """Build a registered solver: options checked against its declared types before it is built."""
    if isinstance(factory, type) and issubclass(factory, Solver):
        try:
            options = check_options(factory, f"solver {name!r}", options)
        except OptionError as exc:
            raise SolverError(str(exc)) from None
    solver = factory(**options)
    if not isinstance(solver, Solver):
        raise SolverError(f"solver {name!r} was built as {type(solver).__name__}, not a samplekit Solver")
    return solver
