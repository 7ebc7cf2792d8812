"""samplekit's built-in plugin: the SDEs, the time schedules, Euler–Maruyama and the core metrics."""

from __future__ import annotations

from samplekit import schedules, sde
from samplekit.bench import metrics
from samplekit.hookspecs import hookimpl

from samplekit_builtin.annealed_langevin import AnnealedLangevin
from samplekit_builtin.ddim import DDIM
from samplekit_builtin.ddpm import DDPM
from samplekit_builtin.euler_maruyama import EulerMaruyama
from samplekit_builtin.langevin import Langevin
from samplekit_builtin.ode_euler import ODEEuler
from samplekit_builtin.ode_heun import ODEHeun
from samplekit_builtin.pc import PredictorCorrector


@hookimpl
def samplekit_register_sdes(register):
    for cls in (sde.VPSDE, sde.SubVPSDE, sde.VESDE, sde.OUSDE, sde.EDMSDE, sde.RectifiedFlowSDE):
        register(cls.name, cls)


@hookimpl
def samplekit_register_schedules(register):
    for name, fn in schedules.SCHEDULES.items():
        register(name, fn)


@hookimpl
def samplekit_register_solvers(register):
    for cls in (EulerMaruyama, ODEEuler, ODEHeun, DDPM, DDIM, PredictorCorrector, AnnealedLangevin, Langevin):
        register(cls)


@hookimpl
def samplekit_register_metrics(register):
    for name, (fn, info) in metrics.METRICS.items():
        register(name, fn, **info)


@hookimpl
def samplekit_register_targets(register):
    from samplekit.targets import EXACT_TARGETS, ExactTarget

    for name, make in EXACT_TARGETS.items():
        register(name, lambda make=make, name=name: ExactTarget(name, make()), summary=make.__doc__.splitlines()[0],
                 exact=True)


@hookimpl
def samplekit_register_trace_estimators(register):
    from samplekit.trace import ESTIMATORS

    for cls in ESTIMATORS:
        register(cls.name, cls, stochastic=cls.stochastic)


@hookimpl
def samplekit_register_guidance(register):
    from samplekit import conditioning, guidance

    register("classifier", guidance.classifier, nfe_per_eval=2)
    register("classifier_free", guidance.classifier_free, nfe_per_eval=2)
    register("observed_score", conditioning.observed_score, nfe_per_eval=1)
