"""Per target and budget: samplekit's best (any solver, SDE and grid) against the best peer (k-diffusion or
diffusers) on each metric (SW2, |logp gap|, mode-weight TV), with the noise floor deciding ties.

A cell is a tie when the two bests differ by at most 2 floor sd, or both are within floor mean + 2 sd
(what two exact sets of this size score).  Adaptive runs count at a budget when their real NFE fits it.

    .venv/bin/python benchmarks/peers/stress_summary.py OUT.md results.jsonl [more.jsonl ...]
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict

METRICS = ("sw2", "logp_gap", "mode_tv")
PEERS = ("k-diffusion", "diffusers")


def load(paths):
    rows = []
    for p in paths:
        with open(p) as f:
            rows += [json.loads(line) for line in f if line.strip()]
    return rows


def best(rows, metric, budget):
    fits = [
        r
        for r in rows
        if r["status"] == "ok"
        and r.get(metric) is not None
        and r["nfe"] is not None
        and (r["budget"] == budget or (r["budget"] is None and r["nfe"] <= budget))
    ]
    return min(fits, key=lambda r: r[metric], default=None)


def main(argv):
    out, paths = argv[0], argv[1:]
    rows = load(paths)
    floors = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["library"] == "exact":
            for m in METRICS:
                if r.get(m) is not None:
                    floors[r["target"]][m].append(r[m])
    lines = [
        "# samplekit's best vs the best peer, per target, budget and metric",
        "",
        f"Made by `stress_summary.py` from {', '.join(paths)}. Each cell: samplekit's best value "
        "(solver, SDE/grid) / the best peer's (library:sampler); verdict `win`, `tie` (within the noise floor: "
        "difference <= 2 floor sd, or both <= floor mean + 2 sd) or `behind` (ratio).",
        "",
    ]
    counts = defaultdict(int)
    targets = sorted(
        {r["target"] for r in rows if r["library"] in PEERS}
        & {r["target"] for r in rows if r["library"] == "samplekit"}
    )
    for target in targets:
        tr = [r for r in rows if r["target"] == target]
        budgets = sorted({r["budget"] for r in tr if r["budget"] is not None})
        lines += [f"## {target}", "", "| NFE | " + " | ".join(METRICS) + " |", "|---|" + "---|" * len(METRICS)]
        fl = floors[target]
        lines.insert(
            len(lines) - 2,
            "floor (mean +- sd): "
            + ", ".join(f"{m} {statistics.mean(fl[m]):.3g} +- {statistics.pstdev(fl[m]):.2g}" for m in METRICS if fl[m])
            + "\n",
        )
        for b in budgets:
            cells = []
            for m in METRICS:
                ours = best([r for r in tr if r["library"] == "samplekit"], m, b)
                theirs = best([r for r in tr if r["library"] in PEERS], m, b)
                if ours is None or theirs is None:
                    cells.append("n/a")
                    continue
                a, p = ours[m], theirs[m]
                mean = statistics.mean(fl[m]) if fl[m] else 0.0
                sd = statistics.pstdev(fl[m]) if len(fl[m]) > 1 else 0.0
                if abs(a - p) <= 2 * sd or max(a, p) <= mean + 2 * sd:
                    verdict = "tie"
                elif a < p:
                    verdict = "win"
                else:
                    verdict = f"behind {a / p:.1f}x"
                counts[verdict.split()[0]] += 1
                extra = ""
                if ours["extra"].get("optimizer_nfe"):
                    extra = f", optimizer {ours['extra']['optimizer_nfe']} NFE"
                cells.append(
                    f"{a:.3g} ({ours['sampler']} {ours['setting']}{extra}) / {p:.3g} "
                    f"({theirs['library']}:{theirs['sampler']}) **{verdict}**"
                )
            lines.append(f"| {b} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.insert(4, "Totals: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + "\n")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines[:6]))


if __name__ == "__main__":
    main(sys.argv[1:])
