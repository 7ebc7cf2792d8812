"""Per-sample-seed overhead against one int seed at batch 4096 (issue 16, item 4(a)).

1. Raw draws: one ``NoiseSource.randn`` of (4096, *shape): the int seed (one torch.Generator), the
   per-sample counter-based streams (samplekit.noise), and the previous per-sample implementation (one
   torch.Generator and one torch.randn per sample, stacked), rebuilt here as the "before" figure.
2. End to end: ``sk.sample`` of 4096 samples with ``euler_maruyama`` (one draw a step), int seed vs one
   seed per sample, on the exact ring score (a cheap network: the worst case for the noise's share) and
   on the shipped digits UNet (a real network).
Run: ``OMP_NUM_THREADS=1 python benchmarks/scale/noise_overhead.py`` (results: noise.md here).
"""

from __future__ import annotations

import time

import torch

import samplekit as sk
from samplekit.noise import NoiseSource
from samplekit.targets import ring2d

BATCH = 4096


def best_of(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def loop_draw(generators, shape, dtype):
    """The per-sample implementation before the counter-based streams: one randn per sample."""
    return torch.stack([torch.randn(shape, generator=g, dtype=dtype) for g in generators])


def raw_draws() -> None:
    print("| shape | dtype | int seed (ms) | per-sample, counter (ms) | ratio | per-sample, loop before (ms) | ratio |")
    print("|---|---|---|---|---|---|---|")
    seeds = list(range(BATCH))
    for shape in [(2,), (1, 8, 8), (3, 32, 32)]:
        for dtype in (torch.float32, torch.float64):
            one, per = NoiseSource(0, BATCH), NoiseSource(seeds, BATCH)
            gens = [torch.Generator().manual_seed(s) for s in seeds]
            t_int = best_of(lambda: one.randn(shape, dtype))
            t_per = best_of(lambda: per.randn(shape, dtype))
            t_loop = best_of(lambda: loop_draw(gens, shape, dtype), repeats=3)
            print(
                f"| {shape} | {str(dtype).replace('torch.', '')} | {1e3 * t_int:.2f} | {1e3 * t_per:.2f} | "
                f"{t_per / t_int:.2f}x | {1e3 * t_loop:.1f} | {t_loop / t_int:.1f}x |"
            )


def end_to_end() -> None:
    print()
    print("| model | nfe | int seed (s) | per-sample seeds (s) | ratio |")
    print("|---|---|---|---|---|")
    cases = [("ring2d exact score", ring2d().score_model(sk.VPSDE()), 100)]
    try:
        cases.append(("digits_unet (shipped)", sk.get_target("digits_unet").model(), 10))
    except Exception as exc:  # pragma: no cover - reported, not fatal
        print(f"(digits_unet unavailable: {exc})")
    for name, model, nfe in cases:
        kw = dict(nfe=nfe, num_samples=BATCH, progress=False)
        with torch.no_grad():
            t_int = best_of(lambda: sk.sample(model, "euler_maruyama", seed=0, **kw), repeats=3)
            t_per = best_of(lambda: sk.sample(model, "euler_maruyama", seed=list(range(BATCH)), **kw), repeats=3)
        print(f"| {name} | {nfe} | {t_int:.3f} | {t_per:.3f} | {t_per / t_int:.2f}x |")


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, batch {BATCH}")
    raw_draws()
    end_to_end()
