"""samplekit's published and popular time grids (``samplekit_register_schedules``), one module each:
``ays``, ``beta``, ``polyexponential``, ``kl_optimal``, ``exponential``, ``sgm_uniform``, and ``optimized``
(the per-model grid of ``samplekit.schedule_optimizer``, cached on disk)."""

from __future__ import annotations

from samplekit.hookspecs import Register, hookimpl
from samplekit_schedules.ays import ays
from samplekit_schedules.beta import beta
from samplekit_schedules.exponential import exponential
from samplekit_schedules.kl_optimal import kl_optimal
from samplekit_schedules.optimized import optimized
from samplekit_schedules.polyexponential import polyexponential
from samplekit_schedules.sgm_uniform import sgm_uniform


@hookimpl
def samplekit_register_schedules(register: Register) -> None:
    for fn in (ays, beta, polyexponential, kl_optimal, exponential, sgm_uniform, optimized):
        register(fn.__name__, fn)
