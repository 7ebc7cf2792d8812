"""Fast high-order solvers: DPM-Solver++ (2M, 3M, SDE 2M), UniPC and the EDM Heun sampler."""

from __future__ import annotations

from samplekit.hookspecs import hookimpl

from samplekit_fast.dpmpp_2m import DPMSolverPP2M
from samplekit_fast.dpmpp_3m import DPMSolverPP3M
from samplekit_fast.dpmpp_2m_sde import SDEDPMSolverPP2M
from samplekit_fast.unipc import UniPC
from samplekit_fast.edm_heun import EDMHeun

SOLVERS = (DPMSolverPP2M, DPMSolverPP3M, SDEDPMSolverPP2M, UniPC, EDMHeun)


@hookimpl
def samplekit_register_solvers(register):
    for cls in SOLVERS:
        register(cls)
