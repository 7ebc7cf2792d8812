"""Side-by-side peer benchmark: samplekit vs k-diffusion vs diffusers on the exact Gaussian-mixture targets.

    .venv/bin/python benchmarks/peers/run.py --record   # the full run (~15 min on 2 idle cores), recorded
    .venv/bin/python benchmarks/peers/run.py --quick    # ring2d only, one seed, NFE 10 and 20, 1000 samples

Every library gets the same exact model (the mixture's exact score / eps / denoiser in its own
convention), the same x_T draw z (scaled by its prior std), the same NFE budgets (network calls
counted, never assumed) and the same metrics against the same exact reference set.  Writes
results.jsonl (one record per run), then results.md and sw2_vs_nfe.png (report.py): beside this script
with --record (the recorded results), else in out/benchmarks/peers/.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # benchmarks/: recorded.py

import common  # noqa: E402
import diffusers_peers  # noqa: E402
import kdiff_peers  # noqa: E402
import recorded  # noqa: E402
import report  # noqa: E402
import samplekit_runs  # noqa: E402
import torch  # noqa: E402

COST = {"gmm64_diag": 3, "gmm16_full": 2, "ring2d": 1}  # relative cost of one exact-model call
LIBRARIES = {"samplekit": samplekit_runs.runs, "k-diffusion": kdiff_peers.runs, "diffusers": diffusers_peers.runs}


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="ring2d, seed 0, NFE 10 and 20, 1000 samples (a smoke run)")
    p.add_argument("--targets", default=",".join(common.TARGETS), help="comma-separated targets")
    p.add_argument("--nfe", default=",".join(map(str, common.BUDGETS)), help="comma-separated NFE budgets")
    p.add_argument("--seeds", default=",".join(map(str, common.SEEDS)), help="comma-separated seeds")
    p.add_argument("--libraries", default=",".join(LIBRARIES), help="comma-separated subset of " + ",".join(LIBRARIES))
    p.add_argument("--sdes", default="vp,edm", help="samplekit SDEs to try (vp, edm, ve)")
    p.add_argument(
        "--schedules",
        default="default,karras,logsnr",
        help="samplekit schedules to try per solver ('default' = the solver's own)",
    )
    p.add_argument(
        "--denoise-final",
        choices=tuple(samplekit_runs.DENOISE_FINAL),
        default="off",
        help="samplekit fixed-step solvers: without (off), with (on) or both with and without the final Tweedie "
        "denoise (denoise_final=True, +1 NFE inside the budget; setting suffix '+df')",
    )
    p.add_argument("--solvers", default=None, help="comma-separated samplekit solvers (default: every registered one)")
    p.add_argument("--no-floor", action="store_true", help="do not write noise-floor records (when adding to a run)")
    p.add_argument("--append", action="store_true", help="append to results.jsonl instead of starting it afresh")
    p.add_argument("--n", type=int, default=None, help="sample size (default: 4000 ring2d, 2000 otherwise)")
    p.add_argument("--out", default=None, help="output directory (default: see --record)")
    recorded.add_flag(p)
    p.add_argument("--jobs", type=int, default=2, help="worker processes, one (target, seed, library) cell each")
    args = p.parse_args(argv)
    args.out = args.out or str(recorded.output_dir(HERE, args.record, "peers"))
    if args.quick:
        args.targets, args.nfe, args.seeds, args.n = "ring2d", "10,20", "0", args.n or 1000
    args.targets = args.targets.split(",")
    args.nfe = tuple(int(b) for b in args.nfe.split(","))
    args.seeds = tuple(int(s) for s in args.seeds.split(","))
    args.libraries = args.libraries.split(",")
    args.sdes = tuple(args.sdes.split(","))
    args.solvers = tuple(args.solvers.split(",")) if args.solvers else None
    args.schedules = tuple(None if s == "default" else s for s in args.schedules.split(","))
    for name, known in (("targets", common.TARGETS), ("libraries", LIBRARIES), ("sdes", samplekit_runs.SDES)):
        unknown = sorted(set(getattr(args, name)) - set(known))
        if unknown:
            p.error(f"--{name}: unknown {unknown}; choose from {sorted(known)}")
    return args


def cell(task) -> tuple[str, list[dict]]:
    """One (target, seed, library) cell, run in a worker process: its records and a progress line."""
    target, seed, library, args = task
    torch.set_num_threads(1)  # the exact models are small: intra-op threads only contend
    problem, start = common.Problem(target, seed, args.n), time.perf_counter()
    kwargs = (
        {
            "sdes": args.sdes,
            "only": args.solvers,
            "schedules": args.schedules,
            "denoise_final": samplekit_runs.DENOISE_FINAL[args.denoise_final],
        }
        if library == "samplekit"
        else {}
    )
    records = [r.to_json() for r in LIBRARIES[library](problem, args.nfe, **kwargs)]
    counts = {s: sum(r["status"] == s for r in records) for s in ("ok", "skipped", "failed")}
    return f"{target:>11} seed {seed} {library:>12}: {counts} in {time.perf_counter() - start:6.1f}s", records


def main(argv=None) -> None:
    args = parse(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.jsonl"
    start = time.perf_counter()
    # heaviest cells first (the 64-D target, samplekit's many configurations) so the pool stays busy
    tasks = sorted(
        ((t, s, lib, args) for t in args.targets for s in args.seeds for lib in args.libraries),
        key=lambda c: (-COST.get(c[0], 0), c[2] != "samplekit"),
    )
    with path.open("a" if args.append else "w") as f:

        def write(record: dict) -> None:
            f.write(json.dumps(record) + "\n")
            f.flush()

        for target in args.targets if not args.no_floor else ():
            for seed in args.seeds:
                problem = common.Problem(target, seed, args.n)
                for j, floor in enumerate(problem.floors()):
                    write(
                        common.Record(
                            "exact",
                            "noise floor",
                            "two exact sets",
                            target,
                            None,
                            seed,
                            problem.n,
                            nfe=0,
                            seconds=0.0,
                            extra={"pair": j},
                            **floor,
                        ).to_json()
                    )
        with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
            for message, records in pool.imap_unordered(cell, tasks):
                for record in records:
                    write(record)
                print(f"{message} (total {time.perf_counter() - start:6.1f}s)", flush=True)
    if not args.no_floor:  # a run without floors is merged into another: report.py main.jsonl extra.jsonl
        report.main([str(path), "--out", str(out)])
    print(f"wrote {path}, {out / 'results.md'}, {out / 'sw2_vs_nfe.png'} in {time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    main()
