"""Figures (matplotlib, Agg): quality against NFE and against wall time, log-log, one figure per family of
targets with a panel per target (the recommended solvers in colour and starred, the others grey); a
"recommended" figure (the pick per target and budget); a scatter of samples per solver for a 2-D target;
a grid of sample images per solver."""

from __future__ import annotations

import math
from collections.abc import Callable
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


def highlight_colours(recommended: dict) -> dict:
    """label -> colour for every solver recommended somewhere (tab10, then tab20), in order of first
    appearance: the same colour for a solver in every figure of a run."""
    plt = _pyplot()
    labels = list(dict.fromkeys(lab for picks in recommended.values() for lab in picks))
    palette = [plt.get_cmap("tab10")(i) for i in range(10)] + [plt.get_cmap("tab20")(i) for i in range(1, 20, 2)]
    return {lab: palette[i % len(palette)] for i, lab in enumerate(labels)}


GREY = (0.55, 0.55, 0.55, 0.45)


def _flow_value(e) -> float | None:
    """A deterministic solver's distance to the reference ODE solution (None for a stochastic one)."""
    return e.metrics.get("flow_error") if e.stochastic is False else None


def _metric_value(metric: str, floor: float | None) -> Callable:
    """The metric of an entry, divided by the noise floor when one is given."""

    def value(e) -> float | None:
        v = e.metrics.get(metric)
        return None if v is None else (v / floor if floor else v)

    return value


def _log_axes(ax, budgets: list[int] | None) -> None:
    """Log-log axes whose ticks read as plain numbers: the budgets on x (NFE), 1-2-5 steps on y."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    if budgets:
        ax.xaxis.set_major_locator(FixedLocator(sorted(budgets)))
        ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0), numticks=12))
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.tick_params(labelsize=7)
    ax.grid(True, which="major", alpha=0.25)


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
    title: str = "",
    budgets: dict | None = None,
    colours: dict | None = None,
) -> Path:
    """Small multiples for one family of targets: a column per target, a row per measure (the distance to
    the reference ODE solution of the deterministic solvers, if any; the headline metric relative to its
    noise floor, 1 = indistinguishable from exact samples), against NFE (``x="nfe"``) or the wall time of
    the cell's sampling run (``x="time"``).  The solvers recommended for one of these targets
    (``recommended[(target, sde)]`` = {label: [budgets]}) are drawn in colour, starred where recommended;
    every other solver is a grey line (one legend entry per family), so the legend stays short."""
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
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(3.3 * ncols, 7.5), 2.9 * nrows + 0.9), squeeze=False)
    colours = colours or highlight_colours({k: v for k, v in recommended.items() if k in panels})
    shown = [lab for lab in colours if any(lab in recommended.get(k, {}) for k in panels)]
    legend: dict[str, object] = {}
    for col, (target, sde) in enumerate(panels):
        floor = floors.get(target, {}).get(primary)
        relative = bool(floor and floor > 0)
        what: list[tuple[Callable, str]] = [(_flow_value, "distance to ODE reference")] if has_flow else []
        what.append(
            (
                _metric_value(primary, floor if relative else None),
                f"{primary_label} / noise floor" if relative else primary_label,
            )
        )
        picks = recommended.get((target, sde), {})
        for row, (value, ylabel) in enumerate(what):
            ax = axes[row][col]
            for label in labels:
                pts = _panel_points(rows_by[(target, sde)].get(label, {}), value)
                if not pts:
                    continue
                xs = [p[0] for p in pts] if x == "nfe" else [p[2].seconds for p in pts]
                ys = [p[1] for p in pts]
                fam = "adaptive ODE" if label in adaptive else family.get(label, FAMILIES[0])
                if label in shown:
                    line = ax.plot(
                        xs, ys, ls=FAMILY_STYLE[fam], marker="o", ms=3.5, lw=2.2, color=colours[label], zorder=4
                    )[0]
                    legend.setdefault(label + (" (adaptive)" if label in adaptive else ""), line)
                    for p, xv in zip(pts, xs):
                        if label in picks and label not in adaptive and p[0] in picks[label]:
                            ax.scatter(
                                [xv], [p[1]], marker="*", s=150, color=colours[label], edgecolor="black", zorder=5
                            )
                else:
                    line = ax.plot(xs, ys, ls=FAMILY_STYLE[fam], lw=0.8, color=GREY, zorder=2)[0]
                    legend.setdefault(f"other {fam} solvers", line)
            if row == len(what) - 1 and relative:
                ax.axhline(1.0, color="black", ls="--", lw=1)
            own = (budgets or {}).get(target) if x == "nfe" else None
            _log_axes(ax, own)
            if own:  # the budgets fill the panel; an adaptive solver's larger NFE is in table.md
                ax.set_xlim(min(own) / 1.25, max(own) * 1.6)
            ax.set_title(f"{target} ({sde})" if row == 0 else "", fontsize=9)
            if row == len(what) - 1:
                ax.set_xlabel("NFE" if x == "nfe" else "seconds per run", fontsize=8)
            if col == 0:
                ax.set_ylabel(ylabel, fontsize=8)
    names = [n for n in legend if not n.startswith("other ")] + [n for n in legend if n.startswith("other ")]
    fig.legend(
        [legend[n] for n in names],
        names,
        loc="lower center",
        ncol=min(5, max(1, len(names))),
        fontsize=7,
        frameon=False,
    )
    fig.suptitle(
        (title + ": " if title else "") + "coloured = recommended somewhere (★ at its budget); grey = the others",
        fontsize=9,
    )
    rows_of_legend = math.ceil(len(names) / 5)
    fig.tight_layout(rect=(0, 0.04 + 0.035 * rows_of_legend, 1, 0.96))
    path = Path(path)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


def recommended_figure(
    picks: dict, path: str | Path, colours: dict, order: list[str] | None = None, metric_labels: dict | None = None
) -> Path:
    """One row per target, one cell per budget: the recommended solver there (its colour as in the quality
    figures) and its error.  ``picks[(target, sde)]`` = [report.Pick]."""
    plt = _pyplot()
    keys = sorted(picks, key=lambda k: ((order or []).index(k[0]) if k[0] in (order or []) else 99, k))
    width = max([len(picks[k]) for k in keys] + [1])
    fig, ax = plt.subplots(figsize=(1.6 + 2.3 * width, 0.9 + 0.5 * len(keys)))
    for r, key in enumerate(keys):
        for j, p in enumerate(picks[key]):
            colour = colours.get(p.best, GREY)
            ax.add_patch(plt.Rectangle((j, r), 0.96, 0.9, color=colour, alpha=0.35, lw=0))
            metric = "dist." if p.metric == "flow_error" else (metric_labels or {}).get(p.metric, p.metric)
            ax.text(j + 0.48, r + 0.32, p.best, ha="center", va="center", fontsize=8, weight="bold")
            ax.text(
                j + 0.48,
                r + 0.66,
                f"NFE {p.nfe} · {metric} {p.estimate.value:.2g}",
                ha="center",
                va="center",
                fontsize=6.5,
            )
    ax.set_xlim(0, width)
    ax.set_ylim(len(keys), 0)
    ax.set_yticks([r + 0.45 for r in range(len(keys))])
    ax.set_yticklabels([f"{t} ({s})" for t, s in keys], fontsize=8)
    ax.set_xticks([])
    ax.tick_params(length=0)
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    ax.set_title(
        "Recommended solver per target and budget (dist.: to the reference ODE solution; budgets left to right)",
        fontsize=9,
    )
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
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
        ax.set_title(name, fontsize=9, weight="bold" if name.startswith("★") else "normal")
        if name.startswith("★"):  # the recommended solver's panel
            for side in ax.spines.values():
                side.set_linewidth(2.5)
                side.set_color("C2")
        ax.set_aspect("equal")
        if lim:
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    if title:
        fig.suptitle(title, y=1.0 + 0.25 / fig.get_figheight(), va="bottom")
    path = Path(path)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
