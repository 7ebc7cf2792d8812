#!/usr/bin/env bash
# Round 3 protocol (as round3_stress/run_round3.sh + round3_optimized/run_optimized.sh) on the three default-suite
# targets ring2d, gmm16_full, gmm64_diag, all at n = 1000 (the stress targets' size; the suite's own defaults are
# 4000 ring2d / 2000 otherwise). Ordered so that a cut-off run leaves whole seeds and the planned cuts come last:
#   per seed (0, then 1): core solvers + k-diffusion + diffusers on grids default,karras,logsnr; the other
#   samplekit_fast solvers on the same grids; optimized grids at NFE 5,10,20;
#   then grids beta,kl_optimal (samplekit only; seed 0, then 1); then optimized grids at NFE 50 (seed 0, then 1).
set -u
cd "$(dirname "$0")/../../.."
export OMP_NUM_THREADS=1
PY=.venv/bin/python
OUT=benchmarks/peers/round3_default
OPT=benchmarks/peers/round3_default_optimized
T=ring2d,gmm16_full,gmm64_diag
CORE=dpmpp_2m,dpmpp_3m,unipc,deis,ipndm,lms,dpm_2,dpmpp_2s,dpmpp_2m_sde,euler_ancestral,dpmpp_3m_sde,er_sde,sa_solver,dpmpp_sde,dpm_adaptive
CORE_FIXED=${CORE%,dpm_adaptive}
EXTRA=dpm_fast,dpmpp_3s,edm_heun,gradient_estimation,ddim,dpm_2_ancestral,dpmpp_2s_ancestral,restart,lcm
C="--targets $T --n 1000 --nfe 5,10,20,50 --sdes vp,edm --denoise-final both --jobs 1 --out $OUT"
O="--targets $T --n 1000 --sdes vp --libraries samplekit --solvers dpmpp_2m,dpmpp_3m,unipc,ipndm,deis
   --schedules optimized --no-floor --jobs 1 --out $OPT"
for s in 0 1; do
  if [ "$s" = 0 ]; then A=""; else A="--append"; fi
  $PY benchmarks/peers/run.py $C --schedules default,karras,logsnr --seeds $s --solvers $CORE $A
  $PY benchmarks/peers/run.py $C --schedules default,karras,logsnr --seeds $s --solvers $EXTRA --libraries samplekit --append --no-floor
  $PY benchmarks/peers/run.py $O --nfe 5,10,20 --seeds $s $A
  echo "SEED $s DONE (grids default,karras,logsnr; optimized NFE 5-20)"
done
for s in 0 1; do
  $PY benchmarks/peers/run.py $C --schedules beta,kl_optimal --seeds $s --solvers $CORE_FIXED,$EXTRA --libraries samplekit --append --no-floor
  echo "SEED $s DONE (grids beta,kl_optimal)"
done
for s in 0 1; do
  $PY benchmarks/peers/run.py $O --nfe 50 --seeds $s --append
  echo "SEED $s DONE (optimized NFE 50)"
done
echo DONE
