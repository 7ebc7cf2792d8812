"""The grid of cells: (target, sde, solver + options, nfe or tolerance, seed), checked before any work.

Every name is looked up and every solver built once with its options, so an unknown name or a bad
option is an error before the first cell runs.  A cell's ``key`` is everything its result depends
on, so a rerun recognises finished cells and a changed suite does not reuse stale ones.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from samplekit.bench.flow import FLOW_SOLVER
from samplekit.bench.suite import SolverSpec, Suite, SuiteError
from samplekit.bench.targets import target_sdes
from samplekit.registry import UnknownComponentError
from samplekit.solver import build_solver


@dataclass(frozen=True)
class Cell:
    """One sampling run; ``tol`` is set for adaptive solvers (then ``nfe`` is their cap)."""

    target: str
    sde: str
    solver: str
    label: str
    options: dict = field(hash=False)
    nfe: int
    seed: int
    num_samples: int
    dtype: str
    tol: float | None = None
    adaptive: bool = False
    kind: str = "cell"
    flow_tol: float | None = None  # deterministic: also its distance to the reference ODE solution

    @property
    def key(self) -> str:
        d = asdict(self)
        d.pop("label"), d.pop("adaptive")
        return json.dumps(d, sort_keys=True, default=str)

    @property
    def solver_options(self) -> dict:
        return {**self.options, **({"rtol": self.tol, "atol": self.tol} if self.tol is not None else {})}


@dataclass(frozen=True)
class FloorCell:
    """The noise floor of one target and seed: each metric between the cells' reference set and an
    independent one, averaged over ``repeats`` independent sets (one draw is as noisy as a cell)."""

    target: str
    seed: int
    num_samples: int
    repeats: int = 4
    kind: str = "floor"

    @property
    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class FlowRefCell:
    """The reference probability-flow solution of one target, SDE and seed (ode_dopri5 at ``tol``): its
    record gives the reference's own NFE; deterministic cells measure their distance to it."""

    target: str
    sde: str
    seed: int
    num_samples: int
    dtype: str
    tol: float
    kind: str = "flow_ref"

    @property
    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def is_stochastic(registry, spec: SolverSpec) -> bool:
    """Whether the solver with these options samples the SDE (its capabilities, which may depend on options)."""
    factory = registry.get("solver", spec.name).factory
    options = dict(spec.options)
    if is_adaptive(registry, spec.name):
        options.update(rtol=0.1, atol=0.1)
    return bool(build_solver(factory, spec.name, options).capabilities().stochastic)


def expand_solvers(suite: Suite, registry) -> tuple[SolverSpec, ...]:
    if isinstance(suite.solvers, str):  # "all" (the only string a Suite accepts)
        return tuple(SolverSpec(c.name) for c in registry.available("solver"))
    return suite.solvers


def is_adaptive(registry, name: str) -> bool:
    info = registry.get("solver", name)
    return bool(info.info["adaptive"])


def check_names(suite: Suite, registry, extra_targets: dict) -> None:
    """Every unknown target, SDE, metric and solver name of the suite, reported together in one error."""
    problems = []
    wanted = [("target", n) for n in suite.targets if n not in extra_targets]
    wanted += [("sde", n) for n in suite.sdes] + [("metric", n) for n in suite.metrics]
    solver_names = {spec.name for t in suite.targets for spec in _rows(suite.for_target(t))}
    wanted += [("solver", n) for n in sorted(solver_names)]
    for kind, name in wanted:
        try:
            registry.get(kind, name)
        except UnknownComponentError as exc:
            problems.append(str(exc))
    if problems:
        raise SuiteError(f"{len(problems)} unknown name(s) in the suite or options:\n- " + "\n- ".join(problems))


def _rows(suite: Suite) -> tuple[SolverSpec, ...]:
    return suite.solvers if isinstance(suite.solvers, tuple) else ()


def validate(suite: Suite, registry, extra_targets: dict | None = None) -> dict:
    """Check every name and option against the registry; return the built targets by name."""
    extra_targets = dict(extra_targets or {})
    check_names(suite, registry, extra_targets)
    targets = {}
    for name in suite.targets:
        targets[name] = extra_targets[name] if name in extra_targets else registry.create("target", name)
    specs = {spec for t in suite.targets for spec in expand_solvers(suite.for_target(t), registry)}
    for spec in sorted(specs, key=lambda sp: sp.label):
        factory = registry.get("solver", spec.name).factory
        if is_adaptive(registry, spec.name):
            tol = (spec.tolerances or suite.tolerances)[0]
            build_solver(factory, spec.name, {**spec.options, "rtol": tol, "atol": tol})
        elif spec.tolerances is not None:
            raise SuiteError(
                f"solver {spec.name!r} is not adaptive; remove its tolerances (it runs at nfe = {list(suite.nfe)})"
            )
        else:
            build_solver(factory, spec.name, dict(spec.options))
    if any(getattr(t, "needs_sde_reference", False) for t in targets.values()):
        registry.get("solver", suite.reference_sde_solver)
    for name, target in targets.items():
        if not target_sdes(target, suite.sdes):
            raise SuiteError(
                f"target {name!r} runs with SDEs {list(getattr(target, 'sde_names', []))}, none of "
                f"the suite's sdes {list(suite.sdes)}; add one of them to sdes"
            )
        limit, wanted = getattr(target, "max_samples", None), suite.for_target(name).num_samples
        if limit is not None and wanted > limit:
            raise SuiteError(
                f"target {name!r} has {limit} reference samples per set; num_samples="
                f"{wanted} is too many: lower --num-samples"
            )
    return targets


def has_flow_solver(suite: Suite, registry) -> bool:
    """flow_reference is on and its solver is registered (without torchdiffeq the reference is left out)."""
    try:
        return bool(suite.flow_reference) and registry.get("solver", FLOW_SOLVER) is not None
    except UnknownComponentError:
        return False


def build_cells(suite: Suite, registry, targets: dict) -> list:
    """Floor cells and reference ODE solutions first (every table needs them), then the solver cells.  A target's
    ``target_overrides`` (nfe, seeds, num_samples, solvers, tolerances, max_nfe) apply to its cells."""
    cells: list = [
        FloorCell(t, seed, suite.for_target(t).num_samples) for t in suite.targets for seed in suite.for_target(t).seeds
    ]
    whole, solver_cells = suite, []
    for tname in whole.targets:
        suite = whole.for_target(tname)
        specs = expand_solvers(suite, registry)
        deterministic = {spec.label: not is_stochastic(registry, spec) for spec in specs}
        flow_tol = suite.flow_tolerance if has_flow_solver(suite, registry) and any(deterministic.values()) else None
        for sde in target_sdes(targets[tname], suite.sdes):
            if flow_tol is not None:
                cells += [
                    FlowRefCell(tname, sde, seed, suite.num_samples, suite.dtype, flow_tol) for seed in suite.seeds
                ]
            for spec in specs:
                adaptive = is_adaptive(registry, spec.name)
                budgets = (
                    [(suite.max_nfe, tol) for tol in (spec.tolerances or suite.tolerances)]
                    if adaptive
                    else [(n, None) for n in suite.nfe]
                )
                for nfe, tol in budgets:
                    for seed in suite.seeds:
                        solver_cells.append(
                            Cell(
                                tname,
                                sde,
                                spec.name,
                                spec.label,
                                dict(spec.options),
                                nfe,
                                seed,
                                suite.num_samples,
                                suite.dtype,
                                tol,
                                adaptive,
                                flow_tol=flow_tol if deterministic[spec.label] else None,
                            )
                        )
    return cells + solver_cells
