"""The solver base: declared capabilities, the budget plan, and the step API.

A fixed-step solver implements the diffrax-shaped step API
    init(model, x, ts, noise) -> state
    step(model, i, t0, t1, x, state, noise) -> (x, state, denoised)
walking the grid ts[0] = T > ... > ts[n] = t_min; the loop, progress bar, callback,
NFE accounting and finiteness checks live once in ``samplekit.sampling``.
An adaptive solver (``adaptive = True``) implements ``solve(model, x, noise, max_nfe)`` instead.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from samplekit.noise import NoiseSource
from samplekit.registry import SamplekitError
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


class Solver:
    """Base class of every solver; subclasses set the class attributes and the step API."""

    name: ClassVar[str] = "solver"
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

    def __init__(self, schedule: str | None = None, schedule_options: dict | None = None,
                 denoise_final: bool = False) -> None:
        self.schedule = schedule or self.default_schedule
        self.schedule_options = dict(schedule_options or {})
        self.denoise_final = bool(denoise_final)

    # --- capabilities -----------------------------------------------------------------------
    @classmethod
    def info(cls) -> dict:
        """The declared capabilities, as registered and listed by `samplekit list`."""
        return {"order": cls.order, "stochastic": cls.stochastic, "adaptive": cls.adaptive,
                "nfe_per_step": cls.nfe_per_step, "sde_families": list(cls.sde_families or ("vp", "ve")),
                "samples_target": cls.samples_target}

    def check_sde(self, sde: SDE) -> None:
        """Raise a readable error if this solver cannot integrate ``sde``."""
        if self.sde_families is None:
            return
        family = "ve" if sde.variance_exploding else "vp"
        if family not in self.sde_families:
            raise SolverError(f"solver {self.name!r} does not support {sde!r} ({family}-type); it handles "
                              f"{' and '.join(self.sde_families)}-type SDEs — pick another solver or SDE")

    def steps_for(self, nfe: int) -> int:
        """The number of grid steps that spend at most ``nfe`` network calls."""
        budget = nfe - (1 if self.denoise_final else 0)
        steps = budget // self.nfe_per_step
        if steps < self.min_steps:
            need = self.min_steps * self.nfe_per_step + (1 if self.denoise_final else 0)
            raise SolverError(f"nfe={nfe} is too small for solver {self.name!r}: it needs at least {need} "
                              f"({self.nfe_per_step} per step, {self.min_steps} step(s) minimum"
                              f"{', +1 for denoise_final' if self.denoise_final else ''}); raise nfe")
        return steps

    # --- step API (fixed-step solvers) -------------------------------------------------------
    def init(self, model: ScoreModel, x: Tensor, ts: Tensor, noise: NoiseSource) -> Any:
        return None

    def step(self, model: ScoreModel, i: int, t0: Tensor, t1: Tensor, x: Tensor, state: Any,
             noise: NoiseSource) -> tuple[Tensor, Any, Tensor | None]:
        raise NotImplementedError

    # --- adaptive solvers ------------------------------------------------------------------
    def solve(self, model: ScoreModel, x: Tensor, noise: NoiseSource, max_nfe: int | None) -> Tensor:
        raise NotImplementedError

    def options(self) -> dict:
        """The options this instance was built with (for results tables)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.options().items())})"


def build_solver(factory, name: str, options: dict) -> Solver:
    """Build a registered solver, turning an unknown option into an error that lists the known ones."""
    try:
        solver = factory(**options)
    except TypeError as exc:
        params = _accepted_options(factory)
        unknown = sorted(set(options) - set(params)) if params is not None else []
        if unknown:
            raise SolverError(f"solver {name!r} has no option {', '.join(map(repr, unknown))}; "
                              f"its options are: {', '.join(sorted(params)) or 'none'}") from exc
        raise
    if isinstance(solver, Solver) and solver.name == Solver.name:
        solver.name = name
    return solver


def _accepted_options(factory) -> set[str] | None:
    names: set[str] = set()
    for cls in getattr(factory, "__mro__", [factory]):
        init = cls.__init__ if isinstance(cls, type) else cls
        if init is object.__init__:
            continue
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            return None
        names |= {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"}
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return names
