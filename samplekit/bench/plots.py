"""Figures (matplotlib, Agg): quality vs NFE, log-log, one panel per target with the noise floor as
a line (fixed-step solvers as lines at their real NFE, adaptive ones as points); and a scatter of
samples for a 2-D target."""

from __future__ import annotations

import math
from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colors(labels: list[str]) -> dict:
    plt = _pyplot()
    cmap = plt.get_cmap("tab20" if len(labels) > 10 else "tab10")
    return {lab: cmap(i % cmap.N) for i, lab in enumerate(labels)}


def quality_vs_nfe(rows_by: dict, floors: dict, labels: list[str], adaptive: set, metric: str, metric_label: str,
                   path: str | Path, order: list[str] | None = None) -> Path:
    """rows_by[(target, sde)][label][(nfe, tol)] = Entry (see report.aggregate)."""
    plt = _pyplot()
    panels = sorted(rows_by, key=lambda k: ((order or []).index(k[0]) if k[0] in (order or []) else 99, k))
    ncols = min(3, len(panels)) or 1
    nrows = math.ceil(len(panels) / ncols) or 1
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 4.2 * nrows), squeeze=False)
    colors = _colors(labels)
    # past 20 solvers tab20 repeats its colours: the second round is drawn dashed with square markers
    styles = {lab: ("-", "o") if i < 20 else ("--", "s") for i, lab in enumerate(labels)}
    for ax, (target, sde) in zip(axes.flat, panels):
        for label in labels:
            pts = sorted((e.nfe, e.metrics.get(metric)) for e in rows_by[(target, sde)].get(label, {}).values()
                         if e.status == "ok" and e.metrics.get(metric) is not None and e.metrics[metric] > 0)
            if not pts:
                continue
            xs, ys = zip(*pts)
            if label in adaptive:
                ax.scatter(xs, ys, marker="D", s=30, color=colors[label], label=f"{label} (adaptive)", zorder=3)
            else:
                ax.plot(xs, ys, ls=styles[label][0], marker=styles[label][1], ms=3, lw=1.3, color=colors[label],
                        label=label)
        floor = floors.get(target, {}).get(metric)
        if floor is not None and floor > 0:
            ax.axhline(floor, color="black", ls="--", lw=1, label="noise floor")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{target} ({sde})")
        ax.set_xlabel("NFE (network evaluations)")
        ax.set_ylabel(metric_label)
        ax.grid(True, which="both", alpha=0.25)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    handles, names = {}, []
    for ax in axes.flat:
        for h, n in zip(*ax.get_legend_handles_labels()):
            if n not in handles:
                handles[n] = h
                names.append(n)
    fig.legend([handles[n] for n in names], names, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def sample_scatter(panels: dict, path: str | Path, title: str = "", lim: float | None = None) -> Path:
    """panels: title -> (n, 2) array; the first is usually the exact reference."""
    plt = _pyplot()
    ncols = min(4, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.2 * nrows), squeeze=False)
    for ax, (name, xy) in zip(axes.flat, panels.items()):
        ax.scatter(xy[:, 0], xy[:, 1], s=1.5, alpha=0.5, color="C0" if name.startswith("exact") else "C3")
        ax.set_title(name, fontsize=9)
        ax.set_aspect("equal")
        if lim:
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
