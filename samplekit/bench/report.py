"""The markdown report, per target: deterministic solvers ranked by their distance to the reference
ODE solution, every solver ranked by the headline metric (95% intervals, groups tied within noise,
the noise floor as its own row), a "Recommended" table per budget, the resolution reached, and every
metric at the largest budget; adaptive solvers in a column show their best tolerance whose real (mean)
NFE fits that budget, as ``@nfe``.  An opening "Recommended" section gathers every target's picks (``summary``:
that section alone, for the terminal).  A metric with no value for a target gets no column there.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from samplekit.bench import stats
from samplekit.bench.grid import Cell, FloorCell, FlowRefCell


@dataclass
class Entry:
    """One (row, budget) over seeds: the mean of each metric if every seed finished ok, and the 95%
    intervals (``estimates``) where the records carry what they need (see samplekit.bench.stats)."""

    status: str  # ok | failed | skipped | missing
    nfe: float | None = None  # mean real NFE
    metrics: dict = field(default_factory=dict)
    note: str = ""
    estimates: dict[str, stats.Estimate] = field(default_factory=dict)
    stochastic: bool | None = None
    schedule: str | None = None
    seconds: float | None = None
    paired: np.ndarray | None = None  # per-sample distances to the reference ODE solution, seeds in order


FLOW = "flow_error"


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
        elif isinstance(c, Cell):
            groups[(c.target, c.sde, c.label, c.nfe, c.tol)].append(rec)
    floors = {t: {m: _mean([r.get(m) for r in recs]) for m in recs[0]} for t, recs in floor_groups.items()}
    rows: dict = defaultdict(lambda: defaultdict(dict))
    for (target, sde, label, nfe, tol), recs in groups.items():
        rows[(target, sde)][label][(nfe, tol)] = _entry(recs)
    return rows, floors


def flow_references(records: dict, cells: list) -> dict:
    """(target, sde) -> (mean NFE of its reference ODE solves, dtype, tolerance) for the finished ones."""
    found = defaultdict(list)
    for c in cells:
        rec = records.get(c.key)
        if isinstance(c, FlowRefCell) and rec is not None and rec.get("status") == "ok":
            found[(c.target, c.sde)].append((rec["nfe_spent"], rec.get("ref_dtype", "?"), c.tol))
    return {k: (statistics.fmean(n for n, _, _ in v), v[0][1], v[0][2]) for k, v in found.items()}


def _estimates(recs: list) -> dict:
    out = {}
    first = recs[0]
    for m in first.get("se", {}):
        values = [r["metrics"].get(m) for r in recs]
        ses = [r.get("se", {}).get(m) for r in recs]
        if None not in values and None not in ses:
            out[m] = stats.seeds_interval(values, ses)
    per = [r.get("stats", {}) for r in recs]
    if all(FLOW in p for p in per):
        out[FLOW] = stats.mean_interval([p[FLOW] for p in per])
    expected = first.get("expected_logp")
    if expected is not None and all("logp" in p for p in per) and "logp_gap" in first["metrics"]:
        out["logp_gap"] = stats.abs_gap_interval([p["logp"] for p in per], expected)
    return out


def _entry(recs: list) -> Entry:
    if any(r is None for r in recs):
        return Entry("missing")
    for status, why in (("failed", "error"), ("skipped", "reason")):
        bad = [r for r in recs if r["status"] == status]
        if bad:
            return Entry(status, note=bad[0].get(why, ""))
    names = recs[0]["metrics"].keys()
    metrics = {m: _mean([r["metrics"].get(m) for r in recs]) for m in names}
    if FLOW in metrics and recs[0].get("stats", {}).get(FLOW):
        metrics[FLOW] = stats.pool([r["stats"][FLOW] for r in recs])[0]  # pooled over all samples
    paired = None
    if all(isinstance(r.get("paired"), dict) and FLOW in r["paired"] and FLOW in r.get("stats", {}) for r in recs):
        paired = np.concatenate([stats.decode_per_sample(r["paired"][FLOW], r["stats"][FLOW][0]) for r in recs])
    return Entry(
        "ok",
        _mean([r["nfe_spent"] for r in recs]),
        metrics,
        estimates=_estimates(recs),
        stochastic=recs[0].get("stochastic"),
        schedule=recs[0].get("schedule"),
        seconds=_mean([r.get("seconds") for r in recs]),
        paired=paired,
    )


def rank_metric(e: Entry, primary: str) -> str:
    """Deterministic solvers rank by their distance to the reference ODE solution, the others by the headline."""
    return FLOW if e.stochastic is False and e.metrics.get(FLOW) is not None else primary


def estimate(e: Entry, metric: str) -> stats.Estimate | None:
    """The entry's 95% interval of ``metric`` (a zero-width one where the records give no interval)."""
    if e.status != "ok" or e.metrics.get(metric) is None:
        return None
    if metric in e.estimates:
        return e.estimates[metric]
    v = e.metrics[metric]
    return stats.Estimate(v, v, v)


def estimated(entries: list[tuple[str, Entry]], metric: str) -> list[tuple[str, Entry, stats.Estimate]]:
    """``(label, entry, estimate)`` for the entries with an interval of ``metric``, the others left out."""
    return [(lab, e, est) for lab, e in entries if (est := estimate(e, metric)) is not None]


def fmt(v) -> str:
    return "n/a" if v is None else f"{v:.3g}"


def fmt_ci(e: stats.Estimate | None) -> str:
    if e is None:
        return "n/a"
    if e.half_width == 0:
        return fmt(e.value)
    return f"{e.value:.3g} ±{e.half_width:.1g}"


def _pick(entries: dict, budget: int, metric_of) -> Entry | None:
    """The best adaptive entry whose real NFE fits the budget."""
    fits = [
        e for e in entries.values() if e.status == "ok" and e.nfe <= budget and e.metrics.get(metric_of(e)) is not None
    ]
    return min(fits, key=lambda e: e.metrics[metric_of(e)]) if fits else None


def column_entries(row: dict, adaptive: bool, budget: int, metric) -> Entry:
    """A solver's entry at a budget; ``metric`` is a name or a function of the entry giving one."""
    metric_of = metric if callable(metric) else (lambda e: metric)
    if not adaptive:
        return row.get((budget, None), Entry("missing"))
    picked = _pick(row, budget, metric_of)
    if picked is not None:
        return picked
    statuses = {e.status for e in row.values()}
    if len(statuses) == 1 and statuses <= {"failed", "skipped", "missing"}:
        return Entry(statuses.pop(), note=next(e.note for e in row.values()))
    return Entry("over")


def _status_text(e: Entry) -> str:
    return {"failed": "fail", "skipped": "skip", "missing": "…", "over": "–", "ok": "n/a"}[e.status]


def _text(e: Entry, metric: str, adaptive: bool) -> str:
    if e.status == "ok":
        v = e.metrics.get(metric)
        return fmt(v) + (f" @{e.nfe:.0f}" if adaptive and v is not None else "")
    return _status_text(e)


def _bold_best(texts: list[str], values: list, lower_is_better: bool) -> list[str]:
    finite = [v for v in values if v is not None]
    if not finite:
        return texts
    best = min(finite) if lower_is_better else max(finite)
    return [f"**{t}**" if v == best else t for t, v in zip(texts, values)]


def groups_of(entries: list[tuple[str, Entry]], metric: str) -> list[list[str]]:
    """Tie groups at one budget: paired per-sample differences for the distance to the reference ODE
    solution, overlapping intervals otherwise."""
    found = estimated(entries, metric)
    if metric == FLOW:
        return stats.paired_tie_groups([(lab, est, e.paired) for lab, e, est in found])
    return stats.tie_groups([(lab, est) for lab, _, est in found])


def ranked_table(
    rows: dict, labels: list[str], adaptive: set, nfe: list[int], metric: str, plugins: dict, floor: float | None = None
) -> list[str]:
    """Solver x NFE: value ±95% half-width and (rank of its tie group); rank 1 in bold."""
    header = ["solver", "plugin", *[f"NFE {n}" for n in nfe]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    grid = [
        (label, [column_entries(rows.get(label, {}), label in adaptive, n, metric) for n in nfe]) for label in labels
    ]
    texts: dict[str, list[str]] = {label: [] for label in labels}
    for j in range(len(nfe)):
        items = [(label, estimate(es[j], metric)) for label, es in grid]
        r = {lab: k for k, g in enumerate(groups_of([(label, es[j]) for label, es in grid], metric), 1) for lab in g}
        for (label, es), (_, est) in zip(grid, items):
            e = es[j]
            if est is None:
                texts[label].append(_status_text(e))
                continue
            t = fmt_ci(est) + (f" @{e.nfe:.0f}" if label in adaptive else "") + f" ({r[label]})"
            texts[label].append(f"**{t}**" if r[label] == 1 else t)
    for label in labels:
        lines.append(
            f"| {label}{' (adaptive)' if label in adaptive else ''} | {plugins.get(label) or ''} | "
            + " | ".join(texts[label])
            + " |"
        )
    if floor is not None:
        lines.append("| *noise floor* | | " + " | ".join([f"*{fmt(floor)}*"] * len(nfe)) + " |")
    return lines


def metrics_table(
    rows: dict,
    floor: dict,
    labels: list[str],
    adaptive: set,
    budget: int,
    metrics: list[str],
    primary: str,
    labels_of: dict,
) -> list[str]:
    header = ["solver", *[labels_of.get(m, m) for m in metrics]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    grid = [
        (label, column_entries(rows.get(label, {}), label in adaptive, budget, lambda e: rank_metric(e, primary)))
        for label in labels
    ]
    body = [[fmt_ci(estimate(e, m)) if e.status == "ok" else _status_text(e) for m in metrics] for _, e in grid]
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


@dataclass
class Pick:
    """The recommendation at one budget."""

    nfe: int
    best: str
    metric: str
    estimate: stats.Estimate
    tied: list  # [(label, Estimate)]
    grid: str
    why: str


def _grid_of(e: Entry, label: str, adaptive: set) -> str:
    if label in adaptive:
        return f"adaptive, {e.nfe:.0f} NFE"
    return e.schedule or "default"


def recommend(rows: dict, labels: list[str], adaptive: set, nfe: list[int], primary: str) -> list[Pick]:
    """Per budget: the best deterministic solver by distance to the reference ODE solution and the best
    stochastic one by the headline metric; the stochastic one is recommended only if its headline interval
    lies wholly below the deterministic one's (else the deterministic one, whose error is pathwise)."""
    picks = []
    for n in nfe:
        ents = {
            lab: column_entries(rows.get(lab, {}), lab in adaptive, n, lambda e: rank_metric(e, primary))
            for lab in labels
        }
        ok = {lab: e for lab, e in ents.items() if e.status == "ok"}
        det = [(lab, e) for lab, e in ok.items() if rank_metric(e, primary) == FLOW]
        other = [(lab, e) for lab, e in ok.items() if rank_metric(e, primary) != FLOW and estimate(e, primary)]
        choice = None
        if det:
            group = groups_of(det, FLOW)[0]
            est = {lab: x for lab, _, x in estimated(det, FLOW)}
            choice = (
                group[0],
                FLOW,
                est[group[0]],
                [(g, est[g]) for g in group[1:]],
                "lowest distance to the reference ODE solution",
            )
        if other:
            group = groups_of(other, primary)[0]
            est = {lab: x for lab, _, x in estimated(other, primary)}
            best_o = est[group[0]]
            det_primary = estimate(ok[choice[0]], primary) if choice else None
            if choice is None or (det_primary is not None and best_o.hi < det_primary.lo):
                why = f"lowest {primary}" + (
                    f", below the best deterministic solver's ({fmt_ci(det_primary)})" if choice else ""
                )
                choice = (group[0], primary, best_o, [(g, est[g]) for g in group[1:]], why)
        if choice is None:
            continue
        best, metric, best_est, tied, why = choice
        picks.append(Pick(n, best, metric, best_est, tied, _grid_of(ok[best], best, adaptive), why))
    return picks


def recommended_lines(picks: list[Pick], labels_of: dict) -> list[str]:
    lines = ["| NFE | recommended | grid | error (95% CI) | tied within noise |", "|---|---|---|---|---|"]
    for p in picks:
        shown = labels_of.get(p.metric, p.metric)
        tied = ", ".join(f"{lab} ({fmt_ci(e)})" for lab, e in p.tied) or "none"
        lines.append(
            f"| {p.nfe} | **{p.best}** | {p.grid} | {shown} {fmt_ci(p.estimate)} "
            f"[{p.estimate.lo:.3g}, {p.estimate.hi:.3g}] | {tied} |"
        )
    return lines


def resolution(rows: dict, labels: list[str], adaptive: set, nfe: list[int]) -> list[str]:
    """How finely the deterministic solvers are separated: tie groups and relative interval width per budget."""
    out = []
    for n in nfe:
        items = []
        for lab in labels:
            e = column_entries(rows.get(lab, {}), lab in adaptive, n, FLOW)
            if e.status == "ok" and e.stochastic is False and FLOW in e.estimates:
                items.append((lab, e))
        if len(items) < 2:
            continue
        found = estimated(items, FLOW)  # all of items: a record carries flow_error's value with its stats
        groups = groups_of(items, FLOW)
        ests = sorted((est.value, e) for _, e, est in found)
        # the smallest gap between neighbours in the ranking that the paired test resolves, relative
        gaps = [
            (b[0] - a[0]) / b[0]
            for a, b in zip(ests, ests[1:])
            if b[0] > 0
            and a[1].paired is not None
            and b[1].paired is not None
            and a[1].paired.shape == b[1].paired.shape
            and stats.paired_difference(b[1].paired, a[1].paired).lo > 0
        ]
        rel = statistics.median(est.half_width / est.value for _, _, est in found if est.value > 0)
        out.append(
            f"NFE {n}: {len(items)} deterministic solvers in {len(groups)} tie groups "
            f"(paired per-sample differences); each value's 95% half-width is {100 * rel:.2g}% of it (median)"
            + (f", and neighbours {100 * min(gaps):.2g}% apart are resolved" if gaps else "")
        )
    return out


INTRO = (
    "Deterministic solvers are ranked by their **distance to the reference ODE solution**: the RMS "
    "per-coordinate distance |x - x_ref| / sqrt(d) of each sample to an `ode_dopri5` solve of the same "
    "probability-flow ODE from the same x_T at a tight tolerance (its own NFE given per target), averaged "
    "over samples and seeds with a 95% t interval. On exact targets x_ref is the exact flow, so this is the "
    "pathwise error. On a trained model it is **the solver's error, not the model's**: how far the solver "
    "is from what the same network's ODE gives. Stochastic solvers are ranked by the headline metric, "
    "with a bootstrap interval over samples and seeds. `(k)` is the rank of the group of solvers tied "
    "within noise with the group's best (for the distance to the ODE reference: the 95% interval of the paired "
    "per-sample difference reaches zero, the samples starting from the same x_T; otherwise: overlapping 95% "
    "intervals); rank 1 in bold."
)


def render(
    records: dict, cells: list, suite, metric_info: dict, primary_only: bool = False, target_notes: dict | None = None
) -> str:
    """The whole report as markdown (``primary_only``: the ranked tables and recommendations, for the terminal)."""
    rows_by, floors = aggregate(records, cells)
    refs = flow_references(records, cells)
    solver_cells = [c for c in cells if isinstance(c, Cell)]
    all_labels = list(dict.fromkeys(c.label for c in solver_cells))
    adaptive = {c.label for c in solver_cells if c.adaptive}
    plugins = {c.label: records[c.key].get("plugin") for c in solver_cells if c.key in records}
    primary = suite.primary_metric
    info = metric_info.get(primary, {})
    labels_of = {m: metric_info.get(m, {}).get("label", m) for m in suite.metrics}
    labels_of[FLOW] = "dist. to ODE ref"
    shown = info.get("label", primary)
    out = [
        f"# Benchmark `{suite.name}`",
        "",
        f"{suite.num_samples} samples per cell ({suite.dtype}), seeds {list(suite.seeds)}. " + INTRO,
        f"The headline metric is {shown} ({'lower' if info.get('lower_is_better', True) else 'higher'} is "
        f"better); its noise floor is the same metric between two independent reference sets of that size. "
        f"Adaptive solvers show their best tolerance whose real NFE fits the column, as `@NFE` "
        f"(`–`: every tolerance needs more).",
        "",
    ]
    body: list[str] = []
    all_picks = {}
    for target, sde in sorted(rows_by, key=lambda k: (suite.targets.index(k[0]), k[1])):
        rows, floor = rows_by[(target, sde)], floors.get(target, {})
        own = suite.for_target(target) if hasattr(suite, "for_target") else suite
        nfe = sorted(own.nfe)
        body += [f"## {target} ({sde})", ""]
        if target_notes and target_notes.get(target):
            body += [target_notes[target], ""]
        if own is not suite:
            body += [f"(target overrides: {own.num_samples} samples per cell, seeds {list(own.seeds)}, NFE {nfe})", ""]
        labels = [lab for lab in all_labels if own is suite or lab in rows]
        det_labels = [
            lab
            for lab in labels
            if any(e.stochastic is False and FLOW in e.metrics for e in rows.get(lab, {}).values())
        ]
        if det_labels and (target, sde) in refs:
            ref_nfe, ref_dtype, ref_tol = refs[(target, sde)]
            body += [
                f"Deterministic solvers: distance to the reference ODE solution (ode_dopri5, rtol = atol = "
                f"{ref_tol:g}, {ref_dtype}, {ref_nfe:.0f} NFE per solve), 95% interval, (rank):",
                "",
            ]
            body += ranked_table(rows, det_labels, adaptive, nfe, FLOW, plugins)
            body += [""]
        body += [f"All solvers: {shown} to the reference samples, 95% interval, (rank):", ""]
        body += ranked_table(rows, labels, adaptive, nfe, primary, plugins, floor.get(primary))
        picks = recommend(rows, labels, adaptive, nfe, primary)
        all_picks[(target, sde)] = picks
        body += ["", f"Recommended for {target} ({sde}), per budget:", ""]
        body += recommended_lines(picks, labels_of)
        res = resolution(rows, det_labels, adaptive, nfe)
        if res:
            body += ["", "Resolution: " + "; ".join(res) + "."]
        if not primary_only:
            metrics = [m for m in [*suite.metrics, *([FLOW] if det_labels else [])] if _has_values(rows, floor, m)]
            body += [
                "",
                f"All metrics at NFE {nfe[-1]} (95% intervals where available; adaptive: best tolerance within it):",
                "",
            ]
            body += metrics_table(rows, floor, labels, adaptive, nfe[-1], metrics, primary, labels_of)
            extra = notes(rows, labels)
            if extra:
                body += ["", "Skipped and failed cells:", "", *extra]
        body.append("")
    out += recommended_section(all_picks, labels_of) + body
    return "\n".join(out)


def _has_values(rows: dict, floor: dict, metric: str) -> bool:
    """True if some cell (or the floor) of a target has a value of ``metric``: a metric made for other
    data (or needing an exact density the target lacks) gets no column."""
    if floor.get(metric) is not None:
        return True
    return any(e.metrics.get(metric) is not None for r in rows.values() for e in r.values() if e.status == "ok")


def recommended_section(all_picks: dict, labels_of: dict) -> list[str]:
    """Every target's recommended solver per budget, one table (the report's first section)."""
    out = [
        "## Recommended",
        "",
        "| target | NFE | solver | grid | error (95% CI) | tied within noise |",
        "|---|---|---|---|---|---|",
    ]
    for (target, sde), picks in all_picks.items():
        for p in picks:
            tied = ", ".join(lab for lab, _ in p.tied) or "none"
            out.append(
                f"| {target} ({sde}) | {p.nfe} | **{p.best}** | {p.grid} | "
                f"{labels_of.get(p.metric, p.metric)} {fmt_ci(p.estimate)} | {tied} |"
            )
    if not any(all_picks.values()):
        out.append("| (none: no solver finished a cell) | | | | | |")
    return [*out, ""]


def summary(records: dict, cells: list, suite, metric_info: dict, target_notes: dict | None = None) -> str:
    """What the terminal shows: the Recommended table (and each target's note, e.g. a model measured
    against its own dynamics); the full report is table.md."""
    rows_by, _ = aggregate(records, cells)
    solver_cells = [c for c in cells if isinstance(c, Cell)]
    all_labels = list(dict.fromkeys(c.label for c in solver_cells))
    adaptive = {c.label for c in solver_cells if c.adaptive}
    labels_of = {m: metric_info.get(m, {}).get("label", m) for m in suite.metrics}
    labels_of[FLOW] = "dist. to ODE ref"
    picks = {}
    for target, sde in sorted(rows_by, key=lambda k: (suite.targets.index(k[0]), k[1])):
        own = suite.for_target(target)
        rows = rows_by[(target, sde)]
        labels = [lab for lab in all_labels if own is suite or lab in rows]
        picks[(target, sde)] = recommend(rows, labels, adaptive, sorted(own.nfe), suite.primary_metric)
    out = recommended_section(picks, labels_of)
    for target, note in (target_notes or {}).items():
        if note:
            out += [f"{target}: {note}", ""]
    return "\n".join(out)
