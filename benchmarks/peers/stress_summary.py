"""Per target and budget: samplekit's best (any solver, SDE and grid) against the best peer (k-diffusion or
diffusers) on each metric (SW2, |logp gap|, mode-weight TV), with the noise floor deciding ties.

Two ways to pick "best":

- ``--mode mean`` (default): a configuration is (library, sampler, setting) at one budget; its score is the
  MEAN of the metric over the seeds of the run (every seed that has noise-floor records for the target).  Each
  library's best configuration is the one with the best seed-mean, and that seed-mean is what is compared.
  Configurations missing a seed (not run, failed, or over the budget on some seed) are left out of the verdict
  and listed apart.  This judges a configuration, not a lucky draw: with one seed, the min over ~170
  configurations of a noisy metric is biased low (winner's curse).
- ``--mode min``: the old single-seed rule, the minimum over every record (any seed, any configuration).

The tie rule is the same in both modes: the floor's mean m and sd s over seeds x pairs (what two exact sets of
this size score), and a cell is a tie when the two bests differ by at most 2 s, or both are <= m + 2 s.
Adaptive runs count at a budget when their real NFE fits it (in mean mode: on every seed).

    .venv/bin/python benchmarks/peers/stress_summary.py OUT.md results.jsonl [more.jsonl ...] [--mode mean|min]
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict

METRICS = ("sw2", "logp_gap", "mode_tv")
PEERS = ("k-diffusion", "diffusers")


def load(paths):
    rows = []
    for p in paths:
        with open(p) as f:
            rows += [json.loads(line) for line in f if line.strip()]
    return rows


def fits(r, metric, budget) -> bool:
    return (
        r["status"] == "ok"
        and r.get(metric) is not None
        and r["nfe"] is not None
        and (r["budget"] == budget or (r["budget"] is None and r["nfe"] <= budget))
    )


def best_min(rows, metric, budget):
    """Old rule: the single best record (any seed, any configuration), as (value, record, per-seed text)."""
    r = min((r for r in rows if fits(r, metric, budget)), key=lambda r: r[metric], default=None)
    return None if r is None else (r[metric], r, f"seed {r['seed']}")


def configs(rows, metric, budget, seeds):
    """{(library, sampler, setting): {seed: record}} of the records that fit the budget, and the complete ones."""
    by = defaultdict(dict)
    for r in rows:
        if fits(r, metric, budget):
            by[(r["library"], r["sampler"], r["setting"])][r["seed"]] = r
    complete = {k: v for k, v in by.items() if seeds <= set(v)}
    return by, complete


def best_mean(rows, metric, budget, seeds):
    """New rule: the configuration with the best seed-mean, as (seed-mean, a record of it, per-seed values)."""
    _, complete = configs(rows, metric, budget, seeds)
    if not complete:
        return None
    key = min(complete, key=lambda k: statistics.mean(complete[k][s][metric] for s in seeds))
    per = complete[key]
    mean = statistics.mean(per[s][metric] for s in seeds)
    return mean, per[min(seeds)], "seeds " + "/".join(f"{per[s][metric]:.3g}" for s in sorted(seeds))


def incomplete(ours_rows, peer_rows, target, metric, budget, seeds):
    """Rows for the left-out table: per seed, the best samplekit record of a configuration missing some seed,
    when it beats that seed's value of the judged samplekit best (seed-mean rule)."""
    ours, theirs = best_mean(ours_rows, metric, budget, seeds), best_mean(peer_rows, metric, budget, seeds)
    by, complete = configs(ours_rows, metric, budget, seeds)
    if ours is None or theirs is None:
        return []
    ok = {(r["library"], r["sampler"], r["setting"]) for r in (ours[1], theirs[1])}
    judged = {
        k: v
        for k, v in list(configs(ours_rows, metric, budget, seeds)[1].items())
        + list(configs(peer_rows, metric, budget, seeds)[1].items())
        if k in ok
    }
    out = []
    for seed in sorted(seeds):
        cands = [v[seed] for k, v in by.items() if k not in complete and seed in v]
        if not cands:
            continue
        r = min(cands, key=lambda r: r[metric])
        a = judged[(ours[1]["library"], ours[1]["sampler"], ours[1]["setting"])][seed][metric]
        p = judged[(theirs[1]["library"], theirs[1]["sampler"], theirs[1]["setting"])][seed][metric]
        if r[metric] < a:
            opt = f", optimizer {r['extra']['optimizer_nfe']} NFE" if r["extra"].get("optimizer_nfe") else ""
            out.append((target, budget, metric, seed, r[metric], r, opt, a, p))
    return out


def verdict_of(a, p, mean, sd) -> str:
    if abs(a - p) <= 2 * sd or max(a, p) <= mean + 2 * sd:
        return "tie"
    if a < p:
        return "win"
    return f"behind {a / p:.1f}x"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--mode", choices=("mean", "min"), default="mean")
    ap.add_argument(
        "--contrast",
        default=None,
        metavar="SUFFIX",
        help="mean mode: add a table of samplekit's best seed-mean among settings without / with this suffix "
        "(e.g. '+df': without / with the final denoise)",
    )
    args = ap.parse_args(argv)
    rows = load(args.paths)
    floors = defaultdict(lambda: defaultdict(list))
    floor_seeds = defaultdict(set)
    for r in rows:
        if r["library"] == "exact":
            floor_seeds[r["target"]].add(r["seed"])
            for m in METRICS:
                if r.get(m) is not None:
                    floors[r["target"]][m].append(r[m])
    rule = (
        "each library's configuration (solver, SDE/grid) with the best MEAN over the seeds, its seed-mean and "
        "per-seed values"
        if args.mode == "mean"
        else "each library's single best record (any seed, any configuration)"
    )
    lines = [
        "# samplekit's best vs the best peer, per target, budget and metric",
        "",
        f"Made by `stress_summary.py --mode {args.mode}` from {', '.join(args.paths)}. Each cell: {rule}: "
        "samplekit's / the best peer's (library:sampler); verdict `win`, `tie` (within the noise floor over "
        "seeds x pairs: difference <= 2 floor sd, or both <= floor mean + 2 sd) or `behind` (ratio).",
        "",
    ]
    counts = defaultdict(int)
    per_metric = defaultdict(lambda: defaultdict(int))
    left_out = []
    contrast = []
    targets = sorted(
        {r["target"] for r in rows if r["library"] in PEERS}
        & {r["target"] for r in rows if r["library"] == "samplekit"}
    )
    for target in targets:
        tr = [r for r in rows if r["target"] == target]
        seeds = floor_seeds[target] or {r["seed"] for r in tr}
        budgets = sorted({r["budget"] for r in tr if r["budget"] is not None})
        fl = floors[target]
        lines += [
            f"## {target}",
            "",
            f"seeds {sorted(seeds)}; floor (mean +- sd over seeds x pairs): "
            + ", ".join(
                f"{m} {statistics.mean(fl[m]):.3g} +- {statistics.pstdev(fl[m]):.2g}" for m in METRICS if fl[m]
            ),
            "",
            "| NFE | " + " | ".join(METRICS) + " |",
            "|---|" + "---|" * len(METRICS),
        ]
        ours_rows = [r for r in tr if r["library"] == "samplekit"]
        peer_rows = [r for r in tr if r["library"] in PEERS]
        for b in budgets:
            cells = []
            for m in METRICS:
                if args.mode == "mean":
                    ours, theirs = best_mean(ours_rows, m, b, seeds), best_mean(peer_rows, m, b, seeds)
                    left_out += incomplete(ours_rows, peer_rows, target, m, b, seeds)
                    if args.contrast:
                        has = [r["setting"].endswith(args.contrast) for r in ours_rows]
                        split = [
                            best_mean([r for r, h in zip(ours_rows, has, strict=True) if h == want], m, b, seeds)
                            for want in (False, True)
                        ]
                        contrast.append((target, b, m, *split, best_mean(peer_rows, m, b, seeds)))
                else:
                    ours, theirs = best_min(ours_rows, m, b), best_min(peer_rows, m, b)
                if ours is None or theirs is None:
                    cells.append("n/a")
                    continue
                (a, orec, oseeds), (p, prec, pseeds) = ours, theirs
                mean = statistics.mean(fl[m]) if fl[m] else 0.0
                sd = statistics.pstdev(fl[m]) if len(fl[m]) > 1 else 0.0
                verdict = verdict_of(a, p, mean, sd)
                counts[verdict.split()[0]] += 1
                per_metric[m][verdict.split()[0]] += 1
                extra = ""
                if orec["extra"].get("optimizer_nfe"):
                    extra = f", optimizer {orec['extra']['optimizer_nfe']} NFE"
                cells.append(
                    f"{a:.3g} ({orec['sampler']} {orec['setting']}{extra}; {oseeds}) / {p:.3g} "
                    f"({prec['library']}:{prec['sampler']} {prec['setting']}; {pseeds}) **{verdict}**"
                )
            lines.append(f"| {b} | " + " | ".join(cells) + " |")
        lines.append("")
    totals = "Totals: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    totals += "; per metric: " + "; ".join(
        f"{m} " + ", ".join(f"{k} {v}" for k, v in sorted(per_metric[m].items())) for m in METRICS
    )
    lines.insert(4, totals + "\n")
    if left_out:
        lines += [
            "## samplekit configurations left out of the seed-mean verdict (not on every seed)",
            "",
            "Cells where such a configuration beats, on its own seed, the judged samplekit best on that seed "
            "(same seed, same z): its value / the judged samplekit best's / the judged peer best's, all on that seed.",
            "",
            "| target | NFE | metric | seed | left-out configuration | samplekit best | peer best |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {t} | {b} | {m} | {s} | {v:.3g} ({r['sampler']} {r['setting']}{opt}) | {a:.3g} | {p:.3g} |"
            for t, b, m, s, v, r, opt, a, p in left_out
        ]
        lines.append("")
    if contrast:

        def show(best):
            return "n/a" if best is None else f"{best[0]:.3g} ({best[1]['sampler']} {best[1]['setting']})"

        lines += [
            f"## samplekit's best seed-mean without / with `{args.contrast}` settings",
            "",
            f"| target | NFE | metric | without {args.contrast} | with {args.contrast} | best peer |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {t} | {b} | {m} | {show(no)} | {show(yes)} | {show(peer)} |" for t, b, m, no, yes, peer in contrast
        ]
        lines.append("")
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines[:6]))


if __name__ == "__main__":
    main()
