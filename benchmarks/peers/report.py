"""results.jsonl -> results.md (headline + full tables) and sw2_vs_nfe.png.

    .venv/bin/python benchmarks/peers/report.py benchmarks/peers/results.jsonl

A configuration (library, sampler, setting) is scored by its mean over seeds at each budget, and
only if every seed ran.  Adaptive runs (no budget) count at a budget B when every seed spent <= B.
"Best" at a budget is the lowest mean SW2; the best logp gap is looked up separately.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path

LIBS = ("samplekit", "k-diffusion", "diffusers")


def load(path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def aggregate(records):
    """{target: {(lib, sampler, setting, budget): stats}} over seeds, and {target: floor stats}."""
    groups, floors = defaultdict(list), defaultdict(list)
    for r in records:
        if r["library"] == "exact":
            floors[r["target"]].append(r)
        else:
            groups[(r["target"], r["library"], r["sampler"], r["setting"], r["budget"])].append(r)
    seeds = defaultdict(set)  # the seeds each library finished on each target (a partial run is readable)
    for (target, library, *_), runs in groups.items():
        seeds[target, library] |= {r["seed"] for r in runs}
    table = defaultdict(dict)
    for (target, *key), runs in groups.items():
        ok = [r for r in runs if r["status"] == "ok"]
        entry = {"runs": runs, "ok": len(ok) == len(runs) and len(runs) >= len(seeds[target, key[0]])}
        if entry["ok"]:
            entry.update(_stats(ok))
        table[target][tuple(key)] = entry
    return table, {t: _stats(v) for t, v in floors.items()}


def _stats(runs) -> dict:
    mean = lambda k: sum(r[k] for r in runs) / len(runs)  # noqa: E731
    spread = lambda k: (max(r[k] for r in runs) - min(r[k] for r in runs)) / 2  # noqa: E731
    sd = lambda k: math.sqrt(sum((r[k] - mean(k)) ** 2 for r in runs) / max(len(runs) - 1, 1))  # noqa: E731
    return {
        "sw2": mean("sw2"),
        "sw2_pm": spread("sw2"),
        "gap": mean("logp_gap"),
        "gap_pm": spread("logp_gap"),
        "sw2_sd": sd("sw2"),
        "gap_sd": sd("logp_gap"),
        "count": len(runs),
        "nfe": max(r["nfe"] for r in runs),
        "seconds": sum(r["seconds"] or 0.0 for r in runs) / len(runs),
    }


def candidates(entries: dict, library: str, budget: int):
    for (lib, sampler, setting, b), e in entries.items():
        if lib == library and e["ok"] and (b == budget or (b is None and e["nfe"] <= budget)):
            yield (sampler, setting, b), e


def best(entries, library, budget, key):
    found = sorted(candidates(entries, library, budget), key=lambda kv: kv[1][key])
    return found[0] if found else None


def label(found) -> str:
    (sampler, setting, b), e = found
    at = "" if b is not None else f" @{e['nfe']}"
    return f"{sampler} [{setting}]{at}"


def fmt(x: float) -> str:
    return "–" if x is None or not math.isfinite(x) else (f"{x:.3g}" if x < 1000 else f"{x:.2e}")


def headline(target, entries, floor, budgets, seeds) -> list[str]:
    head = ["NFE"]
    for lib in LIBS:
        head += [f"best {lib} by SW2", "SW2", "its logp gap", f"best {lib} logp gap"]
    head += ["floor SW2", "floor logp gap", "samplekit SW2 / logp gap no worse than peers?"]
    lines = [f"### {target}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for budget in budgets:
        row, score = [str(budget)], {}
        for lib in LIBS:
            by_sw2, by_gap = best(entries, lib, budget, "sw2"), best(entries, lib, budget, "gap")
            if by_sw2 is None:
                row += ["–"] * 4
                continue
            e = by_sw2[1]
            row += [
                label(by_sw2),
                f"{fmt(e['sw2'])} ± {fmt(e['sw2_pm'])}",
                fmt(e["gap"]),
                f"{fmt(by_gap[1]['gap'])} ({label(by_gap)})",
            ]
            score[lib] = (e["sw2"], by_gap[1]["gap"])
        row += [f"{fmt(floor['sw2'])} (sd {fmt(floor['sw2_sd'])})", f"{fmt(floor['gap'])} (sd {fmt(floor['gap_sd'])})"]
        row.append(_verdict(score, floor, seeds))
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _verdict(score, floor, seeds) -> str:
    """yes / tie (behind by less than the noise of a difference of two seed-means) / NO, for SW2 and gap."""
    if "samplekit" not in score:
        return "no samplekit run"
    peers = [v for k, v in score.items() if k != "samplekit"]
    if not peers:
        return "no peer run"
    words = []
    for i, (name, sd) in enumerate((("SW2", floor["sw2_sd"]), ("gap", floor["gap_sd"]))):
        behind = score["samplekit"][i] - min(p[i] for p in peers)
        noise = sd * math.sqrt(2 / seeds)
        words.append(
            f"{name} "
            + ("yes" if behind <= 0 else f"tie (+{behind:.2g})" if behind <= noise else f"NO (+{behind:.2g})")
        )
    return ", ".join(words)


def full_table(target, entries, budgets) -> list[str]:
    head = ["library", "sampler", "setting"] + [f"NFE {b}: SW2 / gap" for b in budgets]
    lines = [
        f"#### every sampler on {target} (mean over seeds; – = not run or a seed failed/skipped)",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    configs = sorted({(lib, s, st) for (lib, s, st, _) in entries}, key=lambda c: (LIBS.index(c[0]), c[1], c[2]))
    for lib, sampler, setting in configs:
        cells = []
        for budget in budgets:
            e = entries.get((lib, sampler, setting, budget))
            cells.append(f"{fmt(e['sw2'])} / {fmt(e['gap'])}" if e and e["ok"] else "–")
        adaptive = entries.get((lib, sampler, setting, None))
        if adaptive is not None:
            cells = [
                f"@NFE {adaptive['nfe']}: {fmt(adaptive['sw2'])} / {fmt(adaptive['gap'])}"
                if adaptive["ok"]
                else _why(adaptive)
            ] + [""] * (len(budgets) - 1)
        lines.append(f"| {lib} | {sampler} | {setting} | " + " | ".join(cells) + " |")
    return lines


def _why(entry) -> str:
    bad = [r for r in entry["runs"] if r["status"] != "ok"]
    return f"{bad[0]['status']}: {bad[0]['error'][:90]}" if bad else "–"


def failures(entries) -> list[str]:
    seen, lines = set(), []
    for (lib, sampler, setting, budget), e in entries.items():
        for r in e["runs"]:
            if r["status"] == "failed" and (lib, sampler, setting) not in seen:
                seen.add((lib, sampler, setting))
                lines.append(f"- {lib} {sampler} [{setting}] (e.g. NFE {budget}): {r['error'][:160]}")
    return lines


def plot(table, floors, budgets, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = list(table)
    fig, axes = plt.subplots(1, len(targets), figsize=(5 * len(targets), 4), squeeze=False)
    for ax, target in zip(axes[0], targets):
        for lib, marker in zip(LIBS, "os^"):
            pts = [(b, best(table[target], lib, b, "sw2")) for b in budgets]
            pts = [(b, f[1]["sw2"]) for b, f in pts if f is not None]
            if pts:
                ax.plot(*zip(*pts), marker=marker, label=f"best {lib}")
        ax.axhline(floors[target]["sw2"], color="k", ls="--", lw=1, label="noise floor")
        ax.set(
            xscale="log", yscale="log", xlabel="NFE (network calls)", ylabel="sliced W2 (mean over seeds)", title=target
        )
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", nargs="+", help="results.jsonl file(s); several are merged")
    p.add_argument("--out", default=None, help="output directory (default: beside the results)")
    args = p.parse_args(argv)
    records = [r for path in args.results for r in load(path)]
    out = Path(args.out or Path(args.results[0]).parent)
    out.mkdir(parents=True, exist_ok=True)
    table, floors = aggregate(records)
    budgets = sorted({r["budget"] for r in records if r["budget"] is not None})
    seeds = sorted({r["seed"] for r in records})
    lines = [
        "# samplekit vs k-diffusion vs diffusers on exact Gaussian mixtures",
        "",
        f"Generated by `benchmarks/peers/run.py` ({len(records)} runs; seeds {seeds}; sizes "
        + ", ".join(f"{t} n={floors[t] and next(r['n'] for r in records if r['target'] == t)}" for t in table)
        + "). SW2 = sliced Wasserstein-2 to an independent exact reference set of the same size; logp gap = "
        "|mean log p(samples) - mean log p(reference)| under the exact target density. ± is half the range "
        "over seeds. Floor: the same metrics between independent exact sets and the reference (mean and sd "
        "over seeds x pairs). Verdict: samplekit's best against the best peer; 'tie' = behind by less than "
        "sd_floor * sqrt(2 / seeds), the noise of a difference of two seed-means. See README.md for the "
        "settings of every library.",
        "",
        "## Headline: best of each library per NFE budget",
        "",
    ]
    for target in table:
        lines += headline(target, table[target], floors[target], budgets, len(seeds)) + [""]
        ratio = best(table[target], "samplekit", 10, "sw2") if 10 in budgets else None
        if ratio:
            lines += [f"samplekit best SW2 at NFE 10 / floor SW2 = {ratio[1]['sw2'] / floors[target]['sw2']:.2f}", ""]
    lines += ["## Every sampler", ""]
    for target in table:
        lines += full_table(target, table[target], budgets) + [""]
        fail = failures(table[target])
        if fail:
            lines += [f"Failed runs on {target}:", ""] + fail + [""]
    (out / "results.md").write_text("\n".join(lines))
    plot(table, floors, budgets, out / "sw2_vs_nfe.png")


if __name__ == "__main__":
    main()
