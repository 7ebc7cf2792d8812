"""samplekit: plugin-based samplers and solvers for score-based diffusion models.

    import samplekit as sk
    model = sk.GaussianMixture(weights, means, covs).score_model(sk.VPSDE())
    res = sk.sample(model, solver="euler_maruyama", nfe=100, num_samples=1000, seed=0)
"""

from __future__ import annotations

from samplekit.api import (available, get_metric, get_schedule, get_sde, get_solver, get_target,
                           get_trace_estimator)
from samplekit.registry import (ComponentInfo, DuplicateComponentError, SamplekitError,
                                UnknownComponentError)
from samplekit.sampling import SampleResult, sample
from samplekit.score import NonFiniteError, Prediction, ScoreModel
from samplekit.sde import EDMSDE, OUSDE, SDE, VESDE, SubVPSDE, VPSDE
from samplekit.solver import Solver, SolverError, StepInfo
from samplekit.targets import GaussianMixture
from samplekit.likelihood import LikelihoodResult, decode, encode, interpolate, log_likelihood
from samplekit.loading import load_model
from samplekit.discrete import DiscreteVPSDE
from samplekit import conditioning, guidance  # noqa: E402  (namespaces: sk.guidance, sk.conditioning)

__version__ = "0.1.0"

__all__ = [
    "available", "get_sde", "get_solver", "get_schedule", "get_metric", "get_target", "get_trace_estimator",
    "sample", "SampleResult", "ScoreModel", "Prediction", "GaussianMixture",
    "SDE", "VPSDE", "SubVPSDE", "VESDE", "OUSDE", "EDMSDE",
    "Solver", "SolverError", "StepInfo", "ComponentInfo",
    "SamplekitError", "UnknownComponentError", "DuplicateComponentError", "NonFiniteError",
    "log_likelihood", "encode", "decode", "interpolate", "LikelihoodResult",
    "guidance", "conditioning",
    "load_model", "DiscreteVPSDE",
]
