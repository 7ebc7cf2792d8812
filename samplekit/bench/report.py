"""The markdown report: per target, a solver x NFE table of the headline metric, best per column in
bold, the noise floor as its own row; adaptive solvers in a column show their best tolerance whose
real (mean) NFE fits that budget, as ``value @nfe``; then every metric at the largest budget.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field

from samplekit.bench.grid import Cell, FloorCell


@dataclass
class Entry:
    """One (row, budget) over seeds: the mean of each metric if every seed finished ok."""

    status: str                     # ok | failed | skipped | missing
    nfe: float | None = None        # mean real NFE
    metrics: dict = field(default_factory=dict)
    note: str = ""


def _mean(values):
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def aggregate(records: dict, cells: list) -> tuple[dict, dict]:
    """rows[(target, sde)][label][(nfe, tol)] = Entry; floors[target] = {metric: mean over seeds}."""
    groups, floor_groups = defaultdict(list), defaultdict(list)
    for c in cells:
        rec = records.get(c.key)
        if isinstance(c, FloorCell):
            if rec is not None and rec.get("status") == "ok":
                floor_groups[c.target].append(rec["metrics"])
        else:
            groups[(c.target, c.sde, c.label, c.nfe, c.tol)].append(rec)
    floors = {t: {m: _mean([r.get(m) for r in recs]) for m in recs[0]} for t, recs in floor_groups.items()}
    rows: dict = defaultdict(lambda: defaultdict(dict))
    for (target, sde, label, nfe, tol), recs in groups.items():
        rows[(target, sde)][label][(nfe, tol)] = _entry(recs)
    return rows, floors


def _entry(recs: list) -> Entry:
    if any(r is None for r in recs):
        return Entry("missing")
    for status, why in (("failed", "error"), ("skipped", "reason")):
        bad = [r for r in recs if r["status"] == status]
        if bad:
            return Entry(status, note=bad[0].get(why, ""))
    names = recs[0]["metrics"].keys()
    return Entry("ok", _mean([r["nfe_spent"] for r in recs]),
                 {m: _mean([r["metrics"].get(m) for r in recs]) for m in names})


def fmt(v) -> str:
    return "n/a" if v is None else f"{v:.3g}"


def _pick(entries: dict, budget: int, metric: str) -> Entry | None:
    """The best adaptive entry whose real NFE fits the budget."""
    fits = [e for e in entries.values() if e.status == "ok" and e.nfe <= budget and e.metrics.get(metric) is not None]
    return min(fits, key=lambda e: e.metrics[metric]) if fits else None


def column_entries(row: dict, adaptive: bool, budget: int, metric: str) -> Entry:
    if not adaptive:
        return row.get((budget, None), Entry("missing"))
    picked = _pick(row, budget, metric)
    if picked is not None:
        return picked
    statuses = {e.status for e in row.values()}
    if len(statuses) == 1 and statuses <= {"failed", "skipped", "missing"}:
        return Entry(statuses.pop(), note=next(e.note for e in row.values()))
    return Entry("over")


def _text(e: Entry, metric: str, adaptive: bool) -> str:
    if e.status == "ok":
        v = e.metrics.get(metric)
        return fmt(v) + (f" @{e.nfe:.0f}" if adaptive and v is not None else "")
    return {"failed": "fail", "skipped": "skip", "missing": "…", "over": "–"}[e.status]


def _bold_best(texts: list[str], values: list, lower_is_better: bool) -> list[str]:
    finite = [v for v in values if v is not None]
    if not finite:
        return texts
    best = min(finite) if lower_is_better else max(finite)
    return [f"**{t}**" if v == best else t for t, v in zip(texts, values)]


def target_table(rows: dict, floor: dict, labels: list[str], adaptive: set, nfe: list[int], metric: str,
                 lower_is_better: bool = True, plugins: dict | None = None) -> list[str]:
    plugins = plugins or {}
    header = ["solver", "plugin", *[f"NFE {n}" for n in nfe]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    grid = []
    for label in labels:
        entries = [column_entries(rows.get(label, {}), label in adaptive, n, metric) for n in nfe]
        grid.append((label, entries))
    body = [[_text(e, metric, label in adaptive) for e in entries] for label, entries in grid]
    for j in range(len(nfe)):
        col = [(e[j].metrics.get(metric) if e[j].status == "ok" else None) for _, e in grid]
        marked = _bold_best([b[j] for b in body], col, lower_is_better)
        for b, m in zip(body, marked):
            b[j] = m
    for (label, _), cells in zip(grid, body):
        lines.append(f"| {label}{' (adaptive)' if label in adaptive else ''} | {plugins.get(label) or ''} | "
                     + " | ".join(cells) + " |")
    lines.append("| *noise floor* | | " + " | ".join([f"*{fmt(floor.get(metric))}*"] * len(nfe)) + " |")
    return lines


def metrics_table(rows: dict, floor: dict, labels: list[str], adaptive: set, budget: int, metrics: list[str],
                  primary: str, labels_of: dict) -> list[str]:
    header = ["solver", *[labels_of.get(m, m) for m in metrics]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    grid = [(label, column_entries(rows.get(label, {}), label in adaptive, budget, primary)) for label in labels]
    body = [[_text(e, m, False) for m in metrics] for _, e in grid]
    for j, m in enumerate(metrics):
        col = [e.metrics.get(m) if e.status == "ok" else None for _, e in grid]
        for b, t in zip(body, _bold_best([b[j] for b in body], col, True)):
            b[j] = t
    for (label, e), cells in zip(grid, body):
        at = f" @{e.nfe:.0f}" if label in adaptive and e.status == "ok" else ""
        lines.append(f"| {label}{at} | " + " | ".join(cells) + " |")
    lines.append("| *noise floor* | " + " | ".join(f"*{fmt(floor.get(m))}*" for m in metrics) + " |")
    return lines


def notes(rows: dict, labels: list[str]) -> list[str]:
    out = []
    for label in labels:
        seen = set()
        for (nfe, tol), e in sorted(rows.get(label, {}).items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
            if e.status in ("failed", "skipped") and e.note not in seen:
                seen.add(e.note)
                where = f"tol {tol:g}" if tol is not None else f"NFE {nfe}"
                out.append(f"- {label}, {where}: {e.status}: {e.note.splitlines()[0] if e.note else ''}")
    return out


def render(records: dict, cells: list, suite, metric_info: dict, primary_only: bool = False) -> str:
    """The whole report as markdown (``primary_only``: just the headline tables, for the terminal)."""
    rows_by, floors = aggregate(records, cells)
    solver_cells = [c for c in cells if isinstance(c, Cell)]
    all_labels = list(dict.fromkeys(c.label for c in solver_cells))
    adaptive = {c.label for c in solver_cells if c.adaptive}
    plugins = {c.label: records[c.key].get("plugin") for c in solver_cells if c.key in records}
    primary = suite.primary_metric
    info = metric_info.get(primary, {})
    nfe = sorted(suite.nfe)
    out = [f"# Benchmark `{suite.name}`: {info.get('label', primary)} "
           f"({'lower' if info.get('lower_is_better', True) else 'higher'} is better)", "",
           f"{suite.num_samples} samples per cell ({suite.dtype}), mean over seeds {list(suite.seeds)}; "
           f"the noise floor is the same metric between two independent exact/reference sets of that size. "
           f"Adaptive solvers show their best tolerance whose real NFE fits the column, as `value @NFE` "
           f"(`–`: every tolerance needs more). Best per column in bold.", ""]
    for (target, sde) in sorted(rows_by, key=lambda k: (suite.targets.index(k[0]), k[1])):
        rows, floor = rows_by[(target, sde)], floors.get(target, {})
        own = suite.for_target(target) if hasattr(suite, "for_target") else suite
        nfe = sorted(own.nfe)
        out += [f"## {target} ({sde})", ""]
        if own is not suite:
            out += [f"(target overrides: {own.num_samples} samples per cell, seeds {list(own.seeds)}, "
                    f"NFE {nfe})", ""]
        labels = [lab for lab in all_labels if own is suite or lab in rows]
        out += target_table(rows, floor, labels, adaptive, nfe, primary, info.get("lower_is_better", True), plugins)
        if not primary_only:
            out += ["", f"All metrics at NFE {nfe[-1]} (adaptive: best tolerance within it):", ""]
            labels_of = {m: metric_info.get(m, {}).get("label", m) for m in suite.metrics}
            out += metrics_table(rows, floor, labels, adaptive, nfe[-1], list(suite.metrics), primary, labels_of)
            extra = notes(rows, labels)
            if extra:
                out += ["", "Skipped and failed cells:", "", *extra]
        out.append("")
    return "\n".join(out)
