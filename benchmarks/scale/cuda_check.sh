#!/usr/bin/env bash
# CUDA check for issue 16 (< 3 minutes on one GPU): device/dtype follow, per-sample seeds bit-identical
# across batch sizes on cuda, no host sync per step on cuda (CUDA-side counters), a 2-process torchrun
# sharded sample (nccl with 2+ GPUs, else gloo) equal to one process, and a throughput figure.
# Writes everything under $OUT (default ./cuda_check_out).  Installs nothing beyond `pip install -e .`.
set -u
OUT=${OUT:-./cuda_check_out}
mkdir -p "$OUT"
PY=${PYTHON:-python}
log() { echo "$@" | tee -a "$OUT/summary.txt"; }
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available(), 'devices', torch.cuda.device_count(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" 2>&1 | tee "$OUT/versions.txt" || { log "FAIL: torch does not import"; exit 1; }
$PY -c "import samplekit" 2>/dev/null || $PY -m pip install --no-deps -e . > "$OUT/pip.txt" 2>&1
$PY -c "import samplekit, pluggy, tqdm; print('samplekit', samplekit.__file__)" 2>&1 | tee -a "$OUT/versions.txt"

timeout 120 $PY - > "$OUT/device_checks.txt" 2>&1 <<'PYEOF'
import sys, time, torch
import samplekit as sk
from samplekit.targets import ring2d
assert torch.cuda.is_available(), "no CUDA device"
dev = torch.device("cuda")
model = ring2d().score_model(sk.VPSDE())
failures = 0
def check(name, ok, detail=""):
    global failures
    failures += not ok
    print(("PASS " if ok else "FAIL ") + name, detail, flush=True)
# 1. device and dtype follow x_T, for one solver of each kind
for dtype in (torch.float32, torch.float64):
    for solver in ("euler_maruyama", "dpmpp_2m", "dpmpp_2m_sde", "unipc", "ode_heun", "ode_dopri5", "sde_srk"):
        try:
            x_T = torch.randn(64, 2, device=dev, dtype=dtype)
            res = sk.sample(model, solver, nfe=20, x_T=x_T, seed=list(range(64)), progress=False)
            check(f"{solver} {dtype}", res.samples.device.type == "cuda" and res.samples.dtype == dtype
                  and bool(torch.isfinite(res.samples).all()), f"{res.samples.device} {res.samples.dtype}")
        except Exception as e:
            check(f"{solver} {dtype}", False, f"{type(e).__name__}: {str(e)[:300]}")
# 2. per-sample seeds bit-identical across batch sizes on cuda (prior draw and every step's noise)
for solver in ("euler_maruyama", "dpmpp_2m_sde", "dpmpp_3m_sde"):
    seeds = list(range(100, 137))
    a = sk.sample(model, solver, nfe=12, num_samples=37, seed=seeds, device=dev, progress=False).samples
    b = sk.sample(model, solver, nfe=12, num_samples=37, seed=seeds, device=dev, batch_size=8, progress=False).samples
    c = sk.sample(model, solver, nfe=12, num_samples=5, seed=seeds[10:15], device=dev, progress=False).samples
    check(f"per-sample seeds on cuda, {solver}", torch.equal(a, b) and torch.equal(a[10:15], c) and a.is_cuda)
# 3. host syncs on cuda: D2H copies counted by the CUDA profiler do not grow with NFE
from torch.profiler import profile, ProfilerActivity
def d2h(nfe):
    x = torch.randn(256, 2, device=dev)
    sk.sample(model, "dpmpp_2m", nfe=nfe, x_T=x, seed=0, progress=False); torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        sk.sample(model, "dpmpp_2m", nfe=nfe, x_T=x, seed=0, progress=False); torch.cuda.synchronize()
    names = [e.name for e in prof.events()]
    return sum("DtoH" in n or "Memcpy DtoH" in n for n in names), sum("cudaStreamSynchronize" in n or "cudaDeviceSynchronize" in n for n in names)
few, many = d2h(10), d2h(40)
check("device-to-host copies do not grow with NFE (10 vs 40)", few[0] == many[0], f"{few} vs {many} (DtoH copies, syncs)")
# 4. throughput on cuda (exact ring score, cheap network: the loop's own cost) and the digits UNet
for batch in (4096, 65536):
    x = torch.randn(batch, 2, device=dev)
    sk.sample(model, "dpmpp_2m", nfe=20, x_T=x, seed=0, progress=False); torch.cuda.synchronize()
    t = time.perf_counter(); sk.sample(model, "dpmpp_2m", nfe=20, x_T=x, seed=0, progress=False); torch.cuda.synchronize()
    dt = time.perf_counter() - t
    print(f"THROUGHPUT ring2d dpmpp_2m nfe=20 batch={batch}: {batch/dt:.0f} samples/s ({dt*1000/20:.2f} ms/step)")
print("failures", failures)
sys.exit(1 if failures else 0)
PYEOF
log "device checks: rc=$? (details in device_checks.txt)"; grep -E "FAIL|THROUGHPUT|failures" "$OUT/device_checks.txt" | tee -a "$OUT/summary.txt"

# 5. sharded sampling under torchrun (the CLI samples on CPU; the process group is nccl with 2+ GPUs, else gloo)
NG=$($PY -c "import torch; print(torch.cuda.device_count())")
BACKEND=gloo; [ "$NG" -ge 2 ] && BACKEND=nccl
export SAMPLEKIT_DIST_BACKEND=$BACKEND OMP_NUM_THREADS=1
timeout 90 $PY -m samplekit sample --solver dpmpp_2m_sde --nfe 12 -n 40 --seed 7 --per-sample-seeds --batch-size 8 --out "$OUT/one" > "$OUT/one.txt" 2>&1
log "single process: rc=$?"
timeout 120 $PY -m torch.distributed.run --standalone --nproc-per-node 2 -m samplekit sample --solver dpmpp_2m_sde --nfe 12 -n 40 --seed 7 --batch-size 16 --out "$OUT/two" > "$OUT/two.txt" 2>&1
log "torchrun 2 processes ($BACKEND): rc=$?"
$PY -c "
import numpy as np
a = np.load('$OUT/one/samples.npz')['samples']; b = np.load('$OUT/two/samples.npz')['samples']
print('sharded union bit-identical to one process:', a.shape == b.shape and bool((a == b).all()))" 2>&1 | tee -a "$OUT/summary.txt"
# 5b. the digits UNet under torchrun: each rank runs it on cuda:LOCAL_RANK (samplekit.distributed.device)
timeout 120 $PY -m samplekit sample --model digits_unet --solver dpmpp_2m --nfe 10 -n 64 --seed 7 --per-sample-seeds --batch-size 32 --out "$OUT/unet_one" > "$OUT/unet_one.txt" 2>&1
log "digits_unet single process on cuda: rc=$? $(grep -o 'wrote 64 samples.*' "$OUT/unet_one.txt")"
timeout 150 $PY -m torch.distributed.run --standalone --nproc-per-node 2 -m samplekit sample --model digits_unet --solver dpmpp_2m --nfe 10 -n 64 --seed 7 --batch-size 16 --out "$OUT/unet_two" > "$OUT/unet_two.txt" 2>&1
log "digits_unet torchrun 2 processes: rc=$? $(grep -o 'wrote 64 samples.*' "$OUT/unet_two.txt")"
$PY -c "
import numpy as np
a = np.load('$OUT/unet_one/samples.npz')['samples']; b = np.load('$OUT/unet_two/samples.npz')['samples']
print('digits_unet sharded vs one process: identical', bool((a == b).all()), 'max |diff|', float(abs(a - b).max()))" 2>&1 | tee -a "$OUT/summary.txt"
# 6. the CPU-side tests of this work, quickly, on the GPU machine's torch
timeout 100 $PY -m pytest tests/test_host_sync.py tests/test_distributed.py -q -x -p no:cacheprovider > "$OUT/pytest.txt" 2>&1
log "pytest test_host_sync + test_distributed: rc=$? ($(tail -1 "$OUT/pytest.txt"))"
