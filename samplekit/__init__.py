"""samplekit: plugin-based samplers and solvers for score-based diffusion models.

    import samplekit as sk
    model = sk.GaussianMixture(weights, means, covs).score_model(sk.VPSDE())
    res = sk.sample(model, solver="euler_maruyama", nfe=100, num_samples=1000, seed=0)

The public names are imported on first use (PEP 562), so ``samplekit --help`` and other light entry
points do not import torch.  Add a public name to ``_EXPORTS`` (name -> module), not as an import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "available": "samplekit.api",
    "get_sde": "samplekit.api",
    "get_solver": "samplekit.api",
    "get_schedule": "samplekit.api",
    "get_metric": "samplekit.api",
    "get_target": "samplekit.api",
    "get_trace_estimator": "samplekit.api",
    "ComponentInfo": "samplekit.registry",
    "SamplekitError": "samplekit.errors",
    "UnknownComponentError": "samplekit.errors",
    "DuplicateComponentError": "samplekit.errors",
    "NonFiniteError": "samplekit.errors",
    "sample": "samplekit.sampling",
    "SampleResult": "samplekit.sampling",
    "Prediction": "samplekit.score",
    "ScoreModel": "samplekit.score",
    "SDE": "samplekit.sde",
    "VPSDE": "samplekit.sde",
    "SubVPSDE": "samplekit.sde",
    "VESDE": "samplekit.sde",
    "OUSDE": "samplekit.sde",
    "EDMSDE": "samplekit.sde",
    "Solver": "samplekit.solver",
    "SolverError": "samplekit.solver",
    "StepInfo": "samplekit.solver",
    "GaussianMixture": "samplekit.targets",
    "LikelihoodResult": "samplekit.likelihood",
    "decode": "samplekit.likelihood",
    "encode": "samplekit.likelihood",
    "interpolate": "samplekit.likelihood",
    "log_likelihood": "samplekit.likelihood",
    "load_model": "samplekit.loading",
    "DiscreteVPSDE": "samplekit.discrete",
    "optimize_schedule": "samplekit.schedule_optimizer",
    "ScheduleReport": "samplekit.schedule_optimizer",
    "fit_solver": "samplekit.fitted",
    "FittedSampler": "samplekit.fitted",
}
_SUBMODULES = ("guidance", "conditioning", "errors")  # namespaces: sk.guidance, sk.conditioning, sk.errors

__all__ = [*_EXPORTS, *_SUBMODULES]  # noqa: PLE0604  (the keys are the public names)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"samplekit.{name}")
    else:
        raise AttributeError(f"module 'samplekit' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from samplekit import conditioning, errors, guidance  # noqa: F401
    from samplekit.api import (  # noqa: F401
        available,
        get_metric,
        get_schedule,
        get_sde,
        get_solver,
        get_target,
        get_trace_estimator,
    )
    from samplekit.discrete import DiscreteVPSDE  # noqa: F401
    from samplekit.errors import (  # noqa: F401
        DuplicateComponentError,
        NonFiniteError,
        SamplekitError,
        UnknownComponentError,
    )
    from samplekit.fitted import FittedSampler, fit_solver  # noqa: F401
    from samplekit.likelihood import (  # noqa: F401
        LikelihoodResult,
        decode,
        encode,
        interpolate,
        log_likelihood,
    )
    from samplekit.loading import load_model  # noqa: F401
    from samplekit.registry import ComponentInfo  # noqa: F401
    from samplekit.sampling import SampleResult, sample  # noqa: F401
    from samplekit.schedule_optimizer import ScheduleReport, optimize_schedule  # noqa: F401
    from samplekit.score import Prediction, ScoreModel  # noqa: F401
    from samplekit.sde import EDMSDE, OUSDE, SDE, VESDE, VPSDE, SubVPSDE  # noqa: F401
    from samplekit.solver import Solver, SolverError, StepInfo  # noqa: F401
    from samplekit.targets import GaussianMixture  # noqa: F401
