"""Fast high-order solvers: DPM-Solver++ (2M, 3M, SDE 2M), UniPC and the EDM Heun sampler."""

from __future__ import annotations

from samplekit.hookspecs import RegisterSolver, hookimpl
from samplekit_fast.deis import DEIS
from samplekit_fast.dpm_2 import DPM2
from samplekit_fast.dpm_2_ancestral import DPM2Ancestral
from samplekit_fast.dpm_adaptive import DPMSolverAdaptive
from samplekit_fast.dpm_fast import DPMSolverFast
from samplekit_fast.dpmpp_2m import DPMSolverPP2M
from samplekit_fast.dpmpp_2m_sde import SDEDPMSolverPP2M
from samplekit_fast.dpmpp_2s import DPMSolverPP2S
from samplekit_fast.dpmpp_2s_ancestral import DPMSolverPP2SAncestral
from samplekit_fast.dpmpp_3m import DPMSolverPP3M
from samplekit_fast.dpmpp_3m_sde import DPMSolverPP3MSDE
from samplekit_fast.dpmpp_3s import DPMSolverPP3S
from samplekit_fast.dpmpp_sde import DPMSolverPPSDE
from samplekit_fast.edm_heun import EDMHeun
from samplekit_fast.er_sde import ERSDE
from samplekit_fast.euler_ancestral import EulerAncestral
from samplekit_fast.gradient_estimation import GradientEstimation
from samplekit_fast.ipndm import IPNDM
from samplekit_fast.lcm import LCM
from samplekit_fast.lms import LMS
from samplekit_fast.restart import Restart
from samplekit_fast.sa_solver import SASolver
from samplekit_fast.unipc import UniPC

SOLVERS = (DPMSolverPP2M, DPMSolverPP3M, SDEDPMSolverPP2M, UniPC, EDMHeun)


@hookimpl
def samplekit_register_solvers(register: RegisterSolver) -> None:
    for cls in SOLVERS:
        register(cls)
    register(DEIS)
    register(DPM2)
    register(DPMSolverAdaptive)
    register(DPMSolverFast)
    register(DPMSolverPP2S)
    register(DPMSolverPP3S)
    register(GradientEstimation)
    register(IPNDM)
    register(LMS)
    register(EulerAncestral)
    register(DPM2Ancestral)
    register(DPMSolverPP2SAncestral)
    register(DPMSolverPPSDE)
    register(DPMSolverPP3MSDE)
    register(ERSDE)
    register(Restart)
    register(LCM)
    register(SASolver)
