"""Peak resident memory (RSS) of a sampling run against its number of network evaluations.

samplekit's ``sample()`` (Euler-Maruyama on the VP reverse SDE) and a bare hand-written loop making the same
network calls (``benchmarks/overhead.py``'s ``bare_loop`` and ``MLP``: three linear layers, width 1024, on
[x, t] with x of dimension 1024; batch 512, float32, under ``torch.no_grad()``).  Each case runs in a fresh
Python process: it builds the network, makes one 10-evaluation warm-up run of the same code (allocator pools,
lazy imports), reads the process's peak RSS so far (``VmHWM`` in ``/proc/self/status``), then runs the case
``--repeats`` times, reading the peak after each.  The growth is that peak minus the warm-up peak: what a
longer run costs in host memory beyond a short one.  A forward hook counts the network calls (must be NFE).

    python benchmarks/memory/peak_rss.py sweep --nfe 10 200 1000 --processes 2 --repeats 2
    python benchmarks/memory/peak_rss.py sweep --nfe 3000 --processes 1 --repeats 1 --append
    python benchmarks/memory/peak_rss.py report          # results.csv -> results.md
    python benchmarks/memory/peak_rss.py case --impl samplekit --nfe 200   # one case (what sweep spawns)

``--before DIR`` adds the implementation "samplekit (before)": the same ``sample()`` run from another
checkout (``DIR`` and ``DIR/plugins`` on ``PYTHONPATH``), e.g. ``git archive REV | tar -x -C DIR``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CSV = HERE / "results.csv"
MD = HERE / "results.md"
FIELDS = ["impl", "nfe", "process", "repeat", "warmup_peak_mib", "peak_mib", "growth_mib", "seconds", "calls"]
BATCH, WIDTH = 512, 1024
SLACK_FACTOR, SLACK_MIB = 1.1, 16.0  # goal: samplekit's growth <= 1.1 x the bare loop's + 16 MiB


def vm_hwm_mib() -> float:
    """The process's peak resident set size so far (VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource  # not Linux: ru_maxrss (KiB on Linux, bytes on macOS)

    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def run_case(impl: str, nfe: int, repeats: int) -> list[dict]:
    """In this process: warm up, then ``repeats`` runs of ``impl`` at ``nfe``; the peak after each."""
    import torch

    sys.path.insert(0, str(HERE.parent))
    from overhead import MLP, bare_loop

    import samplekit as sk

    torch.set_num_threads(int(os.environ.get("SAMPLEKIT_BENCH_THREADS", "1")))
    torch.manual_seed(0)
    sde, net = sk.VPSDE(), MLP(d=WIDTH, hidden=WIDTH).eval()
    model = sk.ScoreModel.from_eps(net, sde, shape=(WIDTH,))
    calls = {"n": 0}
    net.register_forward_hook(lambda *a: calls.__setitem__("n", calls["n"] + 1))

    def run(n: int) -> None:
        if impl == "bare loop":
            gen = torch.Generator().manual_seed(0)
            x = sde.prior_std * torch.randn(BATCH, WIDTH, generator=gen)
            bare_loop(net, sde, x, sk.get_schedule("uniform")(sde, n), gen)
        else:
            sk.sample(model, solver="euler_maruyama", nfe=n, num_samples=BATCH, seed=0, progress=False)

    rows = []
    with torch.no_grad():
        run(10)
        warm = vm_hwm_mib()
        for r in range(repeats):
            calls["n"] = 0
            start = time.perf_counter()
            run(nfe)
            peak = vm_hwm_mib()
            rows.append(
                {
                    "impl": impl,
                    "nfe": nfe,
                    "repeat": r,
                    "warmup_peak_mib": round(warm, 2),
                    "peak_mib": round(peak, 2),
                    "growth_mib": round(peak - warm, 2),
                    "seconds": round(time.perf_counter() - start, 2),
                    "calls": calls["n"],
                }
            )
            assert calls["n"] == nfe, (impl, nfe, calls["n"])
    return rows


def spawn(impl: str, nfe: int, repeats: int, before: str | None) -> list[dict]:
    """``run_case`` in a fresh interpreter (the 'before' implementation from another checkout)."""
    env = dict(os.environ)
    if impl == "samplekit (before)":
        assert before is not None
        env["PYTHONPATH"] = os.pathsep.join([before, str(Path(before) / "plugins")])
    cmd = [sys.executable, str(Path(__file__).resolve()), "case", "--impl", impl, "--nfe", str(nfe)]
    out = subprocess.run([*cmd, "--repeats", str(repeats)], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def sweep(args: argparse.Namespace) -> None:
    impls = ["bare loop", "samplekit"] + (["samplekit (before)"] if args.before else [])
    mode = "a" if args.append and CSV.exists() else "w"
    with CSV.open(mode, newline="") as fh:
        writer = csv.DictWriter(fh, FIELDS)
        if mode == "w":
            writer.writeheader()
        for nfe in args.nfe:
            for p in range(args.processes):
                for impl in impls:  # interleaved, so drift in the machine's load hits all alike
                    if impl == "samplekit (before)" and nfe > args.before_max_nfe:
                        continue
                    for row in spawn(impl, nfe, args.repeats, args.before):
                        writer.writerow({**row, "process": p})
                        fh.flush()
                        print(json.dumps({**row, "process": p}), flush=True)
    report()


def report() -> None:
    """results.csv -> results.md: per NFE and implementation, the largest growth over processes and repeats."""
    rows = list(csv.DictReader(CSV.open()))
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    nfes = sorted({int(r["nfe"]) for r in rows})
    runs = {
        (i, n): [float(r["growth_mib"]) for r in rows if r["impl"] == i and int(r["nfe"]) == n]
        for i in impls
        for n in nfes
    }
    head = (
        "| NFE | "
        + " | ".join(f"{i}: growth MiB, max (all runs)" for i in impls)
        + " | goal: <= 1.1 x bare + 16 | met |"
    )
    lines = [head, "|" + "---|" * (len(impls) + 3)]
    for n in nfes:
        bare = max(runs[("bare loop", n)])
        bound = SLACK_FACTOR * max(bare, 0.0) + SLACK_MIB
        cells = []
        for i in impls:
            got = runs[(i, n)]
            cells.append(f"{max(got):.1f} ({', '.join(f'{g:.1f}' for g in got)})" if got else "-")
        met = "yes" if max(runs[("samplekit", n)]) <= bound else "NO"
        lines.append(f"| {n} | " + " | ".join(cells) + f" | {bound:.1f} | {met} |")
    env = (
        f"torch {__import__('torch').__version__}, Python {platform.python_version()}, {platform.machine()}, "
        f"{os.environ.get('SAMPLEKIT_BENCH_THREADS', '1')} thread(s), batch {BATCH}, width {WIDTH}, float32"
    )
    text = (
        "# Peak RSS against NFE\n\n"
        f"{__doc__.split(chr(10) + chr(10))[1]}\n\nMeasured: {env}. Raw rows: `results.csv` (one per run; "
        "`process` = fresh interpreter, `repeat` = run within it).\n\n" + "\n".join(lines) + "\n"
    )
    MD.write_text(text)
    print(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    case = sub.add_parser("case", help="one case in this process; prints its rows as JSON")
    case.add_argument("--impl", choices=["bare loop", "samplekit", "samplekit (before)"], required=True)
    case.add_argument("--nfe", type=int, required=True)
    case.add_argument("--repeats", type=int, default=2)
    sw = sub.add_parser("sweep", help="every case, each in a fresh process; writes results.csv and results.md")
    sw.add_argument("--nfe", type=int, nargs="+", default=[10, 200, 1000, 3000])
    sw.add_argument("--processes", type=int, default=2)
    sw.add_argument("--repeats", type=int, default=2)
    sw.add_argument("--append", action="store_true", help="add to results.csv instead of replacing it")
    sw.add_argument("--before", help="a checkout to measure as 'samplekit (before)'")
    sw.add_argument("--before-max-nfe", type=int, default=1000)
    sub.add_parser("report", help="rewrite results.md from results.csv")
    args = parser.parse_args()
    if args.command == "case":
        print(json.dumps(run_case(args.impl, args.nfe, args.repeats)))
    elif args.command == "sweep":
        sweep(args)
    else:
        report()


if __name__ == "__main__":
    main()
