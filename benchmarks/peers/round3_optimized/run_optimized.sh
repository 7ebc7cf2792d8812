#!/usr/bin/env bash
# Optimized grids (sk.optimize_schedule, 128 x_T, seed 1000 + seed, cap 30 x budget + 300 calls) on the stress
# targets, VP, no final denoise: seed 1 (new), then seed 0 (a rerun of round2_optimized's seed-0 rows).
set -u
cd "$(dirname "$0")/../../.."
export OMP_NUM_THREADS=1
PY=.venv/bin/python
while [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; do sleep 20; done  # optional: wait for a PID to end
C="--targets grid2d_narrow,spiky3d,gmm32_illcond --n 1000 --nfe 5,10,20,50 --sdes vp --libraries samplekit
   --solvers dpmpp_2m,dpmpp_3m,unipc,ipndm,deis --schedules optimized --no-floor --jobs 1
   --out benchmarks/peers/round3_optimized"
$PY benchmarks/peers/run.py $C --seeds 1
$PY benchmarks/peers/run.py $C --seeds 0 --append
echo DONE
