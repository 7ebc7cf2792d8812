"""samplekit's built-in plugin: the SDEs, the time schedules, Euler–Maruyama and the core metrics."""

from __future__ import annotations

from samplekit import schedules, sde
from samplekit.bench import metrics
from samplekit.hookspecs import Register, RegisterSolver, hookimpl
from samplekit_builtin.annealed_langevin import AnnealedLangevin
from samplekit_builtin.ddim import DDIM
from samplekit_builtin.ddpm import DDPM
from samplekit_builtin.euler_maruyama import EulerMaruyama
from samplekit_builtin.langevin import Langevin
from samplekit_builtin.ode_euler import ODEEuler
from samplekit_builtin.ode_heun import ODEHeun
from samplekit_builtin.pc import PredictorCorrector


@hookimpl
def samplekit_register_sdes(register: Register) -> None:
    for cls in (sde.VPSDE, sde.SubVPSDE, sde.VESDE, sde.OUSDE, sde.EDMSDE, sde.RectifiedFlowSDE):
        register(cls.name, cls)


@hookimpl
def samplekit_register_schedules(register: Register) -> None:
    for name, fn in schedules.SCHEDULES.items():
        register(name, fn)


@hookimpl
def samplekit_register_solvers(register: RegisterSolver) -> None:
    for cls in (EulerMaruyama, ODEEuler, ODEHeun, DDPM, DDIM, PredictorCorrector, AnnealedLangevin, Langevin):
        register(cls)


@hookimpl
def samplekit_register_metrics(register: Register) -> None:
    for name, (fn, info) in metrics.METRICS.items():
        register(name, fn, **info)


@hookimpl
def samplekit_register_targets(register: Register) -> None:
    from samplekit.targets import EXACT_TARGETS, ExactTarget

    for name, make in EXACT_TARGETS.items():
        summary = (make.__doc__ or name).splitlines()[0]
        register(name, lambda make=make, name=name: ExactTarget(name, make()), summary=summary, exact=True)


@hookimpl
def samplekit_register_trace_estimators(register: Register) -> None:
    from samplekit.trace import ESTIMATORS

    for cls in ESTIMATORS:
        register(cls.name, cls, stochastic=cls.stochastic)


@hookimpl
def samplekit_register_guidance(register: Register) -> None:
    from samplekit import conditioning, guidance

    register("classifier", guidance.classifier, nfe_per_eval=2)
    register("classifier_free", guidance.classifier_free, nfe_per_eval=2)
    register("observed_score", conditioning.observed_score, nfe_per_eval=1)
