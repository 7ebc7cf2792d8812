#!/usr/bin/env bash
# Round 3 stress run (issue 12): seed by seed, so that a cut-off run leaves whole seeds.
# Pass 1: core solvers + all peers; pass 2: the remaining samplekit_fast solvers (samplekit only, appended).
set -u
cd "$(dirname "$0")/../../.."
export OMP_NUM_THREADS=1
PY=.venv/bin/python
OUT=benchmarks/peers/round3_stress
T=grid2d_narrow,spiky3d,gmm32_illcond
CORE=dpmpp_2m,dpmpp_3m,unipc,deis,ipndm,lms,dpm_2,dpmpp_2s,dpmpp_2m_sde,euler_ancestral,dpmpp_3m_sde,er_sde,sa_solver,dpmpp_sde,dpm_adaptive
EXTRA=dpm_fast,dpmpp_3s,edm_heun,gradient_estimation,ddim,dpm_2_ancestral,dpmpp_2s_ancestral,restart,lcm
SCHED=default,karras,logsnr,beta,kl_optimal
COMMON="--targets $T --n 1000 --nfe 5,10,20,50 --sdes vp,edm --schedules $SCHED --denoise-final both --jobs 1 --out $OUT"
$PY benchmarks/peers/run.py $COMMON --seeds 0 --solvers $CORE
$PY benchmarks/peers/run.py $COMMON --seeds 1 --solvers $CORE --append
$PY benchmarks/peers/run.py $COMMON --seeds 0 --solvers $EXTRA --libraries samplekit --append --no-floor
$PY benchmarks/peers/run.py $COMMON --seeds 1 --solvers $EXTRA --libraries samplekit --append --no-floor
echo DONE
