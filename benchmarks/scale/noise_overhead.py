"""Per-sample-seed overhead against one int seed at batch 4096 (issue 16, items 4(a) and 5).

1. Raw draws: ``NoiseSource.randn`` of (4096, *shape), per draw over a run of consecutive draws: the int
   seed (one torch.Generator), the per-sample counter-based streams (samplekit.noise, now), the counter
   streams as first landed (commit aa42986, loaded from git when it is at hand) and the per-sample
   implementation before them (one torch.Generator and one torch.randn per sample, stacked), rebuilt here.
2. End to end: ``sk.sample`` of 4096 samples with ``euler_maruyama`` (one draw a step), int seed vs one
   seed per sample, on the exact ring score (a cheap network: the worst case for the noise's share) and
   on the shipped digits UNet (a real network), with the draw's share of a step: the ratio of the best
   times and the median (quartiles) of the ratios of runs made in pairs, the order alternating.
3. ``--compile``: a torch.compile'd float32 draw against eager and the int seed (not shipped).

Timings are the CPU time of this process (one torch thread), best of ``--repeats``, the variants run in
turn within each repeat: on a machine shared with other jobs, CPU time and interleaving keep the
ratios meaningful where wall time is not.  On CUDA the clock is wall time after a synchronize.
Run: ``OMP_NUM_THREADS=1 python benchmarks/scale/noise_overhead.py`` (results: noise.md here).
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import time
import types
from pathlib import Path

import torch

import samplekit as sk
import samplekit.sampling
from samplekit.noise import NoiseSource
from samplekit.targets import ring2d

BATCH = 4096
FIRST_COUNTER = "aa42986"  # the counter-based streams as first landed (int64 passes, fresh tensors)


def clock(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return time.perf_counter()
    return time.process_time()


def interleaved(fns: dict, repeats: int, device: torch.device) -> dict[str, float]:
    """Best time of each function, the functions run in turn within each repeat."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = clock(device)
            fn()
            times[name].append(clock(device) - start)
    return {name: min(ts) for name, ts in times.items()}


def first_counter_source():
    """NoiseSource as of FIRST_COUNTER, from git (None where git or that commit is not at hand)."""
    root = Path(__file__).resolve().parents[2]
    try:
        text = subprocess.run(
            ["git", "show", f"{FIRST_COUNTER}:samplekit/noise.py"], cwd=root, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType("noise_first_counter")
    exec(compile(text, f"{FIRST_COUNTER}:samplekit/noise.py", "exec"), module.__dict__)
    return module.NoiseSource


def loop_draw(generators, shape, dtype, device):
    """The per-sample implementation before the counter-based streams: one randn per sample."""
    return torch.stack([torch.randn(shape, generator=g, dtype=dtype, device=device) for g in generators])


def raw_draws(repeats: int, device: torch.device) -> None:
    first = first_counter_source()
    print(
        f"| shape | dtype | int seed (ms) | per-sample, counter now (ms) | ratio | counter at {FIRST_COUNTER} (ms) "
        "| ratio | per-sample loop before (ms) | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    seeds = list(range(BATCH))
    for shape in [(2,), (1, 8, 8), (3, 32, 32)]:
        for dtype in (torch.float32, torch.float64):
            one, per = NoiseSource(0, BATCH, device), NoiseSource(seeds, BATCH, device)
            gens = [torch.Generator(device).manual_seed(s) for s in seeds]
            # time a run of consecutive draws (a sampler's steps), per draw: small per-sample draws are made
            # ahead in blocks, so one draw alone would be either a whole block or free
            run = max(1, min(64, (1 << 22) // (BATCH * math.prod(shape))))
            fns = {"int": lambda: one.randn(shape, dtype), "per": lambda: per.randn(shape, dtype)}
            if first is not None:
                old = first(seeds, BATCH, device)
                fns["first"] = lambda: old.randn(shape, dtype)
            fns["loop"] = lambda: loop_draw(gens, shape, dtype, device)
            t = interleaved({k: (lambda f=f: [f() for _ in range(run)]) for k, f in fns.items()}, repeats, device)
            t = {k: v / run for k, v in t.items()}
            old_cells = f"{1e3 * t['first']:.2f} | {t['first'] / t['int']:.2f}x" if "first" in t else "- | -"
            print(
                f"| {shape} | {str(dtype).replace('torch.', '')} | {1e3 * t['int']:.2f} | {1e3 * t['per']:.2f} | "
                f"{t['per'] / t['int']:.2f}x | {old_cells} | {1e3 * t['loop']:.1f} | {t['loop'] / t['int']:.1f}x |",
                flush=True,
            )


def _compiled_draw(starts, steps, numel: int):
    """The per-sample draw as one function for torch.compile (float32): the same equations as
    samplekit.noise.counter_normal, out of place (the in-place scratch form is what eager needs)."""
    from samplekit.noise import LOW32, MIX1, MIX2

    z = starts[:, None] + steps
    for k, m in ((30, MIX1), (27, MIX2), (31, None)):
        z = z ^ ((z >> k) & ((1 << (64 - k)) - 1))
        z = z * m if m is not None else z
    hi, lo = z >> 32, z & LOW32
    r = torch.sqrt(-2 * torch.log(lo.to(torch.float32) * 2.0**-32 + 2.0**-33))
    theta = (hi.to(torch.float32) * 2.0**-32 + 2.0**-33) * (2 * math.pi)
    return torch.cat([r * torch.cos(theta), (r * torch.sin(theta))[:, : numel - steps.shape[0]]], dim=1)


def compiled(repeats: int, device: torch.device) -> None:
    """What torch.compile (inductor) would give on the float32 draw: time, compile time, bit identity."""
    from samplekit.noise import Scratch, counter_normal, row_starts, sample_keys

    print()
    print(
        "| shape | int seed (ms) | eager now (ms) | compiled (ms) | ratio | first compile (s) "
        "| bit-identical to eager |"
    )
    print("|---|---|---|---|---|---|---|")
    keys = sample_keys(list(range(BATCH)), device)
    for numel, shape in ((64, "(1, 8, 8)"), (3072, "(3, 32, 32)")):
        steps = Scratch().steps((numel + 1) // 2, device)
        fn = torch.compile(_compiled_draw, dynamic=False)
        start = time.perf_counter()
        out = fn(row_starts(keys, 0), steps, numel)
        first = time.perf_counter() - start
        same = torch.equal(out, counter_normal(keys, 0, (numel,), torch.float32))
        scratch = Scratch()
        t = interleaved(
            {
                "int": lambda: torch.randn(BATCH, numel, device=device),
                "eager": lambda: counter_normal(keys, 0, (numel,), torch.float32, scratch),
                "compiled": lambda: fn(row_starts(keys, 0), steps, numel),
            },
            repeats,
            device,
        )
        print(
            f"| {shape} | {1e3 * t['int']:.2f} | {1e3 * t['eager']:.2f} | {1e3 * t['compiled']:.2f} | "
            f"{t['compiled'] / t['int']:.2f}x | {first:.1f} | {same} |",
            flush=True,
        )


def paired(fn_int, fn_per, repeats: int, device: torch.device) -> tuple[float, float, list[float]]:
    """Best times of the two runs and the per-repeat ratios per / int, the order alternating."""
    t_int, t_per, ratios = [], [], []
    for rep in range(repeats):
        pair = {}
        for name in ("int", "per") if rep % 2 == 0 else ("per", "int"):
            start = clock(device)
            (fn_int if name == "int" else fn_per)()
            pair[name] = clock(device) - start
        t_int.append(pair["int"])
        t_per.append(pair["per"])
        ratios.append(pair["per"] / pair["int"])
    return min(t_int), min(t_per), ratios


def end_to_end(repeats: int, digits_nfe: int, device: torch.device, skip_digits: bool) -> None:
    print()
    print(
        "| model | nfe | int seed (s) | per-sample seeds (s) | ratio of bests | paired ratios: median (quartiles) "
        "| one draw, int / per-sample (ms) | one step (ms) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    # the ring run is short (0.2 s) and its ratio is the noisiest: 8x the repeats
    cases = [("ring2d exact score", ring2d().score_model(sk.VPSDE()), 100, 8 * repeats)]
    if not skip_digits:
        try:
            cases.append(("digits_unet (shipped)", sk.get_target("digits_unet").model(), digits_nfe, 2))
        except Exception as exc:  # pragma: no cover - reported, not fatal
            print(f"(digits_unet unavailable: {exc})")
    seeds = list(range(BATCH))
    for name, model, nfe, reps in cases:
        kw = dict(nfe=nfe, num_samples=BATCH, progress=False, device=device)
        with torch.no_grad():
            t_int, t_per, ratios = paired(
                lambda: sk.sample(model, "euler_maruyama", seed=0, **kw),
                lambda: sk.sample(model, "euler_maruyama", seed=seeds, **kw),
                reps,
                device,
            )
        spread = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
        one, per = NoiseSource(0, BATCH, device), NoiseSource(seeds, BATCH, device)
        shape = tuple(model.shape)
        draw = interleaved(
            {
                "int": lambda: [one.randn(shape) for _ in range(nfe)],
                "per": lambda: [per.randn(shape) for _ in range(nfe)],
            },
            3,
            device,
        )
        draw = {k: v / nfe for k, v in draw.items()}
        print(
            f"| {name} | {nfe} | {t_int:.3f} | {t_per:.3f} | {t_per / t_int:.2f}x | "
            f"{statistics.median(ratios):.2f}x ({spread[0]:.2f}-{spread[2]:.2f}) | "
            f"{1e3 * draw['int']:.2f} / {1e3 * draw['per']:.2f} | {1e3 * t_int / nfe:.1f} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--digits-nfe", type=int, default=4, help="euler_maruyama steps on digits_unet (4096 samples)")
    parser.add_argument("--skip-digits", action="store_true")
    parser.add_argument("--skip-raw", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compile", action="store_true", help="also time a torch.compile'd float32 draw")
    args = parser.parse_args()
    torch.set_num_threads(1)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, batch {BATCH}, {device}")
    assert samplekit.sampling.NoiseSource is NoiseSource
    if not args.skip_raw:
        raw_draws(args.repeats, device)
    end_to_end(args.repeats, args.digits_nfe, device, args.skip_digits)
    if args.compile:
        compiled(args.repeats, device)


if __name__ == "__main__":
    main()
