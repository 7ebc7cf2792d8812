"""Benchmark suites: TOML files a user can copy and edit.

name = "default"
targets = ["ring2d", "gmm16_full"]      # registered targets (samplekit list target)
sdes = ["vp"]                           # targets with a fixed SDE (trained models) use their own
nfe = [5, 10, 20, 50]                   # budgets of the fixed-step solvers
seeds = [0, 1]
num_samples = 2000                      # generated samples per cell = reference samples
metrics = ["sliced_w2", "mmd", ...]     # registered metrics; the first is the headline unless
primary_metric = "sliced_w2"            #   primary_metric says otherwise
tolerances = [1e-2, 1e-3, 1e-4]         # adaptive solvers: rtol = atol swept over these
max_nfe = 2000                          # adaptive solvers: the cap on their spending
solvers = "all"                         # every registered solver, or a list of tables:
flow_reference = true                   # deterministic solvers: RMS distance per sample to an
flow_tolerance = 1e-7                   #   ode_dopri5 solve (this rtol = atol) from the same x_T
reference_sde_solver = "euler_maruyama" # a --model without --data: its reference samples come
reference_sde_nfe = 1000                #   from this SDE solver at this many steps
bootstrap = 25                          # resamples per cell for the SW2 / mode-TV intervals

[[solvers]]
name = "ddim"
options = { eta = 0.0 }                 # keyword options of the solver
label = "ddim"                          # optional: the row name in the table

[target_overrides.digits_unet]          # optional, per target: nfe, seeds, num_samples, solvers,
nfe = [10, 20]                          #   tolerances, max_nfe, flow_tolerance, reference_sde_nfe
                                        #   replace the suite's for that target
solvers = ["euler_maruyama"]            #   (e.g. to keep an expensive network cheap); a command-line
                                        #   override of the same key replaces them too
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from samplekit.errors import SuiteError


@dataclass(frozen=True)
class SolverSpec:
    """One row of the benchmark: a registered solver with options (and, if adaptive, tolerances)."""

    name: str
    options: dict = field(default_factory=dict, hash=False)
    label: str = ""
    tolerances: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not self.label:
            opts = ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(self.options.items()))
            object.__setattr__(self, "label", f"{self.name}({opts})" if opts else self.name)


@dataclass(frozen=True)
class Suite:
    name: str
    targets: tuple[str, ...]
    solvers: tuple[SolverSpec, ...] | str
    sdes: tuple[str, ...] = ("vp",)
    nfe: tuple[int, ...] = (5, 10, 20, 50)
    seeds: tuple[int, ...] = (0,)
    num_samples: int = 2000
    metrics: tuple[str, ...] = ("sliced_w2",)
    primary_metric: str = ""
    tolerances: tuple[float, ...] = (1e-2, 1e-3, 1e-4)
    max_nfe: int = 2000
    dtype: str = "float32"
    scatter_nfe: int = 0
    target_overrides: dict = field(default_factory=dict, hash=False)
    # deterministic solvers: distance to an ode_dopri5 solve of the same ODE from the same x_T at this tolerance
    flow_reference: bool = True
    flow_tolerance: float = 1e-7
    # a model with no reference samples: its reference set comes from this SDE solver on a fine grid
    reference_sde_solver: str = "euler_maruyama"
    reference_sde_nfe: int = 1000
    # bootstrap resamples per cell for the interval of a set distance (SW2, mode-weight TV)
    bootstrap: int = 25
    path: str = ""

    def __post_init__(self) -> None:
        if not self.primary_metric and self.metrics:
            object.__setattr__(self, "primary_metric", self.metrics[0])
        if not self.scatter_nfe and self.nfe:
            object.__setattr__(self, "scatter_nfe", sorted(self.nfe)[min(1, len(self.nfe) - 1)])
        check_suite(self)

    def replace(self, **changes) -> Suite:
        changes = {k: v for k, v in changes.items() if v is not None}
        if "metrics" in changes and "primary_metric" not in changes:
            changes["primary_metric"] = ""  # the first of the new metrics is the headline
        if "target_overrides" not in changes:  # a key set here replaces the per-target ones too
            changes["target_overrides"] = {
                t: {k: v for k, v in o.items() if k not in changes} for t, o in self.target_overrides.items()
            }
        return dataclasses.replace(self, **changes)

    def for_target(self, target: str) -> Suite:
        """This suite with the target's ``target_overrides`` applied (itself if it has none)."""
        override = self.target_overrides.get(target)
        if not override:
            return self
        return dataclasses.replace(self, target_overrides={}, **override)


KEYS = {f.name for f in dataclasses.fields(Suite)} - {"path"}
SOLVER_KEYS = {"name", "options", "label", "tolerances"}
OVERRIDE_KEYS = (
    "nfe",
    "seeds",
    "num_samples",
    "solvers",
    "tolerances",
    "max_nfe",
    "flow_tolerance",
    "reference_sde_nfe",
)


def _ints(value, key: str, positive: bool) -> tuple[int, ...]:
    values = value if isinstance(value, (list, tuple)) else [value]
    if not values or any(
        isinstance(v, bool) or not isinstance(v, int) or (positive and v < 1) or v < 0 for v in values
    ):
        kind = "positive" if positive else "non-negative"
        raise SuiteError(f"{key}={value!r} must be a non-empty list of {kind} integers, e.g. {key} = [5, 10, 20]")
    return tuple(values)


def _names(value, key: str) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, (list, tuple)) or not values or not all(isinstance(v, str) and v for v in values):
        raise SuiteError(f"{key}={value!r} must be a non-empty list of names")
    return tuple(values)


def _solver_spec(entry, i: int) -> SolverSpec:
    if isinstance(entry, str):
        return SolverSpec(entry)
    if not isinstance(entry, dict) or "name" not in entry:
        raise SuiteError(f'solvers[{i}] = {entry!r} must be a name or a table with name = "..."')
    unknown = set(entry) - SOLVER_KEYS
    if unknown:
        raise SuiteError(
            f"solvers[{i}] ({entry['name']}) has unknown key(s) {sorted(unknown)}; use {sorted(SOLVER_KEYS)}"
        )
    options = entry.get("options", {})
    if not isinstance(options, dict):
        raise SuiteError(f"solvers[{i}].options must be a table of keyword options, e.g. options = {{ eta = 0.0 }}")
    tols = entry.get("tolerances")
    if tols is not None:
        tols = _tolerances(tols, f"solvers[{i}].tolerances")
    return SolverSpec(entry["name"], dict(options), entry.get("label", ""), tols)


def _tolerances(value, key: str) -> tuple[float, ...]:
    values = value if isinstance(value, (list, tuple)) else [value]
    if not values or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1 for v in values):
        raise SuiteError(f"{key}={value!r} must be a non-empty list of tolerances in (0, 1), e.g. [1e-2, 1e-3]")
    return tuple(float(v) for v in values)


def parse_solvers(value) -> tuple[SolverSpec, ...] | str:
    if value == "all":
        return "all"
    if not isinstance(value, (list, tuple)) or not value:
        raise SuiteError(f'solvers={value!r} must be "all" or a non-empty list of solver names or tables')
    specs = tuple(_solver_spec(e, i) for i, e in enumerate(value))
    labels = [s.label for s in specs]
    dup = sorted({lab for lab in labels if labels.count(lab) > 1})
    if dup:
        raise SuiteError(f'solver rows {dup} appear twice; give them distinct options or label = "..."')
    return specs


def check_suite(s: Suite) -> None:
    """Types and ranges (names are checked against the registry in grid.validate)."""
    if not isinstance(s.name, str) or not s.name or "/" in s.name:
        raise SuiteError(f"name={s.name!r} must be a non-empty name without '/'")
    _names(s.targets, "targets"), _names(s.sdes, "sdes"), _names(s.metrics, "metrics")
    _ints(s.nfe, "nfe", True), _ints(s.seeds, "seeds", False), _tolerances(s.tolerances, "tolerances")
    for key in ("num_samples", "max_nfe"):
        v = getattr(s, key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 2:
            raise SuiteError(f"{key}={v!r} must be an integer of at least 2")
    if isinstance(s.flow_reference, bool) is False:
        raise SuiteError(f"flow_reference={s.flow_reference!r} must be true or false")
    if (
        isinstance(s.flow_tolerance, bool)
        or not isinstance(s.flow_tolerance, (int, float))
        or not 0 < s.flow_tolerance < 1e-2
    ):
        raise SuiteError(f"flow_tolerance={s.flow_tolerance!r} must be a number in (0, 1e-2), e.g. 1e-7")
    for key in ("reference_sde_nfe", "bootstrap"):
        v = getattr(s, key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 2:
            raise SuiteError(f"{key}={v!r} must be an integer of at least 2")
    if not isinstance(s.reference_sde_solver, str) or not s.reference_sde_solver:
        raise SuiteError(f"reference_sde_solver={s.reference_sde_solver!r} must be a solver name")
    if s.primary_metric not in s.metrics:
        raise SuiteError(f"primary_metric={s.primary_metric!r} is not among metrics {list(s.metrics)}")
    if s.dtype not in ("float32", "float64"):
        raise SuiteError(f'dtype={s.dtype!r} must be "float32" or "float64"')
    if not isinstance(s.target_overrides, dict):
        raise SuiteError("target_overrides must be a table of tables, e.g. [target_overrides.digits_unet]")
    for target, override in s.target_overrides.items():
        # an override of a target not selected (e.g. `--targets ring2d` on the default suite) is ignored;
        # its keys are still checked, since a typo there is a typo in the file
        if not isinstance(override, dict) or set(override) - set(OVERRIDE_KEYS):
            raise SuiteError(f"target_overrides.{target} must be a table with keys among {list(OVERRIDE_KEYS)}")
        dataclasses.replace(s, target_overrides={}, **override)  # checks its values like the suite's own


def suite_from_dict(data: dict, name: str = "suite", path: str = "") -> Suite:
    unknown = set(data) - KEYS
    if unknown:
        raise SuiteError(f"suite {path or name}: unknown key(s) {sorted(unknown)}; known keys: {sorted(KEYS)}")
    for key in ("targets", "solvers"):
        if key not in data:
            raise SuiteError(f"suite {path or name}: missing {key} = [...]")
    kw = dict(data)
    kw.setdefault("name", name)
    kw["solvers"] = parse_solvers(data["solvers"])
    for key in ("targets", "sdes", "metrics"):
        if key in kw:
            kw[key] = _names(kw[key], key)
    for key, positive in (("nfe", True), ("seeds", False)):
        if key in kw:
            kw[key] = _ints(kw[key], key, positive)
    if "tolerances" in kw:
        kw["tolerances"] = _tolerances(kw["tolerances"], "tolerances")
    if isinstance(kw.get("target_overrides"), dict):
        kw["target_overrides"] = {t: _override(o, t) for t, o in kw["target_overrides"].items()}
    try:
        return Suite(path=path, **kw)
    except TypeError as exc:
        raise SuiteError(f"suite {path or name}: {exc}") from None


def _override(table, target: str):
    """One [target_overrides.<target>] table, its values parsed like the suite's own keys."""
    if not isinstance(table, dict):
        return table  # check_suite names the problem
    out = dict(table)
    for key, positive in (("nfe", True), ("seeds", False)):
        if key in out:
            out[key] = _ints(out[key], f"target_overrides.{target}.{key}", positive)
    if "tolerances" in out:
        out["tolerances"] = _tolerances(out["tolerances"], f"target_overrides.{target}.tolerances")
    if "solvers" in out:
        out["solvers"] = parse_solvers(out["solvers"])
    return out


def load_suite(path: str | Path) -> Suite:
    path = Path(path)
    if not path.is_file():
        raise SuiteError(f"suite file {str(path)!r} does not exist; pass --suite PATH to a .toml suite")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"suite file {str(path)!r} is not valid TOML: {exc}") from None
    return suite_from_dict(data, name=path.stem, path=str(path))


PACKAGED_DEFAULT = Path(__file__).with_name("default_suite.toml")


def default_suite_path() -> Path:
    """benchmarks/suites/default.toml of the checkout this package runs from, else the packaged copy."""
    repo_copy = Path(__file__).resolve().parents[2] / "benchmarks" / "suites" / "default.toml"
    return repo_copy if repo_copy.is_file() else PACKAGED_DEFAULT
