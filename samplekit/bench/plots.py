"""Figures (matplotlib, Agg): quality against NFE and against wall time, log-log, one panel per target
(solvers grouped by family, each with its own colour and marker, the recommended ones drawn thick and
starred); a scatter of samples per solver for a 2-D target; a grid of sample images per solver."""

from __future__ import annotations

import math
from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


FAMILIES = ("deterministic ODE", "stochastic", "adaptive ODE")
FAMILY_STYLE = {"deterministic ODE": "-", "stochastic": "--", "adaptive ODE": ":"}
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "<", ">", "p", "h", "*", "8", "d", "H")


def _palette() -> list:
    """60 distinct colours (tab20, tab20b, tab20c) with no colour used twice."""
    plt = _pyplot()
    return [plt.get_cmap(name)(i) for name in ("tab20", "tab20b", "tab20c") for i in range(20)]


def styles(labels: list[str], family: dict) -> dict:
    """label -> (colour, marker, linestyle): a colour of its own (up to 60 solvers, then colours repeat
    with other markers), markers cycling within a family, one line style per family."""
    palette = _palette()
    ordered = sorted(labels, key=lambda lab: (FAMILIES.index(family.get(lab, FAMILIES[0])), labels.index(lab)))
    out: dict[str, tuple] = {}
    count: dict[str, int] = {}
    for i, lab in enumerate(ordered):
        fam = family.get(lab, FAMILIES[0])
        k = count.get(fam, 0)
        count[fam] = k + 1
        out[lab] = (palette[i % len(palette)], MARKERS[(k + i // len(palette)) % len(MARKERS)], FAMILY_STYLE[fam])
    return out


def _panel_points(entries: dict, value) -> list:
    pts = []
    for e in entries.values():
        v = value(e) if e.status == "ok" else None
        if v is not None and v > 0:
            pts.append((e.nfe, v, e))
    return sorted(pts, key=lambda p: p[0])


def quality_figure(
    rows_by: dict,
    floors: dict,
    labels: list[str],
    adaptive: set,
    family: dict,
    primary: str,
    primary_label: str,
    recommended: dict,
    path: str | Path,
    order: list[str] | None = None,
    x: str = "nfe",
) -> Path:
    """Two rows of panels, one panel per target: the distance to the reference ODE solution of the
    deterministic solvers (top) and the headline metric relative to its noise floor for every solver
    (bottom; 1 = indistinguishable from exact samples), against NFE (``x="nfe"``) or the wall time of the
    cell's sampling run (``x="time"``).  ``recommended[(target, sde)]`` = {label: [budgets]}: drawn thick, starred."""
    plt = _pyplot()
    panels = sorted(rows_by, key=lambda k: ((order or []).index(k[0]) if k[0] in (order or []) else 99, k))
    has_flow = any(
        e.metrics.get("flow_error") is not None
        for k in panels
        for r in rows_by[k].values()
        for e in r.values()
        if e.status == "ok"
    )
    nrows = 2 if has_flow else 1
    ncols = max(1, len(panels))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.9 * nrows), squeeze=False)
    look = styles(labels, family)
    for col, (target, sde) in enumerate(panels):
        floor = floors.get(target, {}).get(primary)
        what = (
            [
                (
                    "flow_error",
                    lambda e: e.metrics.get("flow_error") if e.stochastic is False else None,
                    "distance to ODE reference",
                )
            ]
            if has_flow
            else []
        )
        # the lambdas are called within this iteration (the panel's rows below), so the late binding of floor is safe
        what.append(
            (
                primary,
                (
                    lambda e: (
                        e.metrics.get(primary) / floor  # noqa: B023
                        if e.metrics.get(primary) is not None
                        else None
                    )
                )
                if floor and floor > 0
                else (lambda e: e.metrics.get(primary)),
                f"{primary_label} / noise floor" if floor and floor > 0 else primary_label,
            )
        )
        picks = recommended.get((target, sde), {})
        for row, (metric, value, ylabel) in enumerate(what):
            ax = axes[row][col]
            for label in labels:
                pts = _panel_points(rows_by[(target, sde)].get(label, {}), value)
                if not pts:
                    continue
                colour, marker, ls = look[label]
                xs = [p[0] for p in pts] if x == "nfe" else [p[2].seconds for p in pts]
                ys = [p[1] for p in pts]
                star = label in picks
                name = f"{label}{' (adaptive)' if label in adaptive else ''}{' ★' if star else ''}"
                if label in adaptive:
                    ax.plot(xs, ys, ls=":", marker=marker, ms=5, lw=1, color=colour, label=name, zorder=3)
                else:
                    ax.plot(
                        xs,
                        ys,
                        ls=ls,
                        marker=marker,
                        ms=4 if not star else 6,
                        lw=3.2 if star else 1.2,
                        color=colour,
                        label=name,
                        zorder=4 if star else 2,
                        alpha=1 if star else 0.85,
                    )
                for p, xv in zip(pts, xs):
                    if star and x == "nfe" and label not in adaptive and p[0] in picks[label]:
                        ax.scatter([xv], [p[1]], marker="*", s=160, color=colour, edgecolor="black", zorder=5)
            if metric == primary and floor and floor > 0:
                ax.axhline(1.0, color="black", ls="--", lw=1)
            ax.set_xscale("log")
            ax.set_yscale("log")
            from matplotlib.ticker import NullFormatter, ScalarFormatter

            ax.xaxis.set_minor_formatter(NullFormatter())
            if x == "nfe":
                ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.set_title(f"{target} ({sde})", fontsize=10)
            ax.set_xlabel("NFE (network evaluations)" if x == "nfe" else "wall time of the sampling run (s)")
            ax.set_ylabel(ylabel)
            ax.grid(True, which="both", alpha=0.25)
    handles, names = {}, []
    for fam in FAMILIES:
        members = [lab for lab in labels if family.get(lab, FAMILIES[0]) == fam]
        if not members:
            continue
        header = plt.Line2D([], [], ls="none")
        handles[f"— {fam} —"] = header
        names.append(f"— {fam} —")
        for ax in axes.flat:
            for h, n in zip(*ax.get_legend_handles_labels()):
                base = n.replace(" (adaptive)", "").replace(" ★", "")
                if base in members and n not in handles:
                    handles[n] = h
                    names.append(n)
    fig.legend(
        [handles[n] for n in names],
        names,
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        fontsize=7,
        ncol=1 + len(names) // 45,
    )
    fig.suptitle("★ recommended at a budget (thick line); 1 on the lower row = the noise floor", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def image_grid(panels: dict, path: str | Path, title: str = "", per_row: int = 4) -> Path:
    """panels: title -> (n, C, H, W) array of images in about [-1, 1]; each panel a per_row-wide mosaic."""
    import numpy as np

    plt = _pyplot()
    ncols = min(6, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.2 * ncols, 2.4 * nrows), squeeze=False)
    for ax, (name, imgs) in zip(axes.flat, panels.items()):
        imgs = np.clip(np.asarray(imgs, dtype=np.float64), -1, 1)
        n, c, h, w = imgs.shape
        rows = math.ceil(n / per_row)
        canvas = np.ones((rows * (h + 1), per_row * (w + 1))) * 1.0
        for i in range(n):
            r, k = divmod(i, per_row)
            canvas[r * (h + 1) : r * (h + 1) + h, k * (w + 1) : k * (w + 1) + w] = imgs[i].mean(0)
        ax.imshow(canvas, cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
        ax.set_title(name, fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
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
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
