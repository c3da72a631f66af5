"""Report figures (matplotlib, Agg canvas, no pyplot state): the trade-off plot and the entanglement plot.

Colours are the Okabe-Ito colour-blind-safe palette; every method also gets its own marker shape, so
the plots read in greyscale too. Same inputs give byte-identical PNGs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from tracer.io import atomic_path
from tracer.reporting.results import Entanglement, method_sort_key

OKABE_ITO = {
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "green": "#009E73",
    "orange": "#E69F00",
    "purple": "#CC79A7",
    "sky": "#56B4E9",
    "yellow": "#F0E442",
    "black": "#000000",
}
GREY = "#6E6E6E"
BASELINE_COLOURS = ("blue", "green", "orange", "purple", "sky", "yellow")
BASELINE_MARKERS = ("o", "^", "D", "v", "P", "X", "h", "<", ">", "p")
DPI = 110
STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 11,
    "axes.titlesize": 13,
    "axes.labelsize": 11,
    "legend.fontsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#DDDDDD",
    "grid.linewidth": 0.8,
    "text.parse_math": False,  # a "$" in a dataset, concept or method name is text, not math
}
METHOD_LABELS = {
    "original": "Original",
    "retrain": "Retrain",
    "tracer": "TRACER",
    "ga": "GA",
    "npo": "NPO",
    "simnpo": "SimNPO",
    "graddiff": "GradDiff",
    "rmu": "RMU",
    "filter": "Filter",
    "finetune": "Finetune",
}


def method_label(method: str) -> str:
    """Display name: the paper's spelling for known methods, ``TRACER-<x>`` for TRACER ablations."""
    if method in METHOD_LABELS:
        return METHOD_LABELS[method]
    if method.startswith("tracer-"):
        return "TRACER-" + method.removeprefix("tracer-")
    return method


@dataclass(frozen=True)
class MethodStyle:
    colour: str
    marker: str
    size: float
    filled: bool = True
    emphasis: bool = False


def method_styles(methods: list[str]) -> dict[str, MethodStyle]:
    """One fixed style per method name, shared by every plot of a report (so a colour means one method)."""
    styles = {}
    baselines = [m for m in sorted(set(methods), key=method_sort_key) if m not in ("original", "retrain")]
    baselines = [m for m in baselines if m != "tracer" and not m.startswith("tracer-")]
    for index, method in enumerate(baselines):
        colour = OKABE_ITO[BASELINE_COLOURS[index % len(BASELINE_COLOURS)]]
        styles[method] = MethodStyle(colour, BASELINE_MARKERS[index % len(BASELINE_MARKERS)], 70)
    for method in methods:
        if method == "original":
            styles[method] = MethodStyle(GREY, "s", 90)
        elif method == "retrain":
            styles[method] = MethodStyle(OKABE_ITO["black"], "*", 260)
        elif method == "tracer":
            styles[method] = MethodStyle(OKABE_ITO["vermillion"], "o", 170, emphasis=True)
        elif method.startswith("tracer-"):
            styles[method] = MethodStyle(OKABE_ITO["vermillion"], "o", 90, filled=False)
    return styles


def tradeoff_plot(summary: pd.DataFrame, styles: dict[str, MethodStyle], title: str, path: Path) -> Path:
    """Exposure@10 (x, lower is better) against retain NDCG@10 (y, higher is better), one point per method.

    ``summary``: aggregate() rows of one (dataset, concept); seed std drawn as x/y error bars.
    Writes a PNG to ``path`` atomically and returns ``path``.
    """
    summary = summary.dropna(subset=["exposure@10_mean", "retain_ndcg@10_mean"])
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(8.0, 5.6), dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        for _, row in summary.iterrows():
            _draw_point(axes, row, styles[row["method"]])
        if summary.empty:
            axes.text(0.5, 0.5, "no method has both metrics", ha="center", transform=axes.transAxes)
        else:
            _set_limits(axes, summary)
        better = axes.annotate(
            "better",
            xy=(0.80, 0.20),
            xytext=(0.955, 0.045),
            xycoords="axes fraction",
            ha="center",
            va="center",
            fontsize=11,
            fontweight="bold",
            color="#333333",
            arrowprops={"arrowstyle": "-|>", "color": "#333333", "lw": 1.6, "shrinkA": 10},
        )
        axes.set_xlabel("Exposure@10 of the concept (share of top-10 slots, 0–1) ← lower is better")
        axes.set_ylabel("Retain NDCG@10 (0–1) → higher is better")
        axes.set_title(title)
        _label_points(figure, axes, summary, styles, avoid=better)
        return _save(figure, path)


def _draw_point(axes, row: pd.Series, style: MethodStyle) -> None:
    x, y = row["exposure@10_mean"], row["retain_ndcg@10_mean"]
    x_err, y_err = _finite_or_zero(row["exposure@10_std"]), _finite_or_zero(row["retain_ndcg@10_std"])
    if x_err or y_err:
        axes.errorbar(x, y, xerr=x_err, yerr=y_err, fmt="none", ecolor=style.colour, elinewidth=1.2,
                      capsize=3, alpha=0.8, zorder=2)  # fmt: skip
    axes.scatter(
        [x],
        [y],
        s=style.size,
        marker=style.marker,
        facecolors=style.colour if style.filled else "white",
        edgecolors="black" if style.emphasis else ("#333333" if style.filled else style.colour),
        linewidths=1.6 if style.emphasis or not style.filled else 0.8,
        zorder=4 if style.emphasis else 3,
    )


def _finite_or_zero(value: float) -> float:
    return 0.0 if value is None or not math.isfinite(value) else float(value)


def _set_limits(axes, summary: pd.DataFrame) -> None:
    """Pad both axes so markers, error bars and labels stay inside (extra room right for the labels)."""
    x = summary["exposure@10_mean"].to_numpy(float)
    y = summary["retain_ndcg@10_mean"].to_numpy(float)
    x_err = np.nan_to_num(summary["exposure@10_std"].to_numpy(float))
    y_err = np.nan_to_num(summary["retain_ndcg@10_std"].to_numpy(float))
    x_lo, x_hi = float(np.min(x - x_err)), float(np.max(x + x_err))
    y_lo, y_hi = float(np.min(y - y_err)), float(np.max(y + y_err))
    x_span = max(x_hi - x_lo, 0.02)
    y_span = max(y_hi - y_lo, 0.01)
    axes.set_xlim(x_lo - 0.08 * x_span, x_hi + 0.30 * x_span)
    axes.set_ylim(y_lo - 0.25 * y_span, y_hi + 0.12 * y_span)


def _label_points(figure: Figure, axes, summary: pd.DataFrame, styles: dict[str, MethodStyle], avoid) -> None:
    """Write each method's name next to its point. Greedy, in display pixels: a label goes right of its
    point, else left, else moved up/down until it overlaps no marker, no earlier label and not ``avoid``
    (an artist); a moved label is joined to its point by a thin line. The layout is frozen first so pixel
    positions stay valid."""
    figure.canvas.draw()
    figure.set_layout_engine("none")
    renderer = figure.canvas.get_renderer()
    area = axes.get_window_extent(renderer)
    points = summary[["method", "exposure@10_mean", "retain_ndcg@10_mean"]].itertuples(index=False)
    obstacles = [_marker_box(axes, x, y, styles[method].size, figure.dpi) for method, x, y in points]
    obstacles.append(avoid.get_window_extent(renderer))
    order = summary.sort_values(["retain_ndcg@10_mean", "method"], ascending=[False, True])
    for _, row in order.iterrows():
        method = row["method"]
        bold = method in ("tracer", "retrain", "original")
        annotation = axes.annotate(
            method_label(method),
            xy=(row["exposure@10_mean"], row["retain_ndcg@10_mean"]),
            xytext=(LABEL_GAP, 0),
            textcoords="offset points",
            va="center",
            fontsize=11 if bold else 10,
            fontweight="bold" if bold else "normal",
            zorder=5,
        )
        for side, dy in LABEL_CANDIDATES:
            annotation.set_position((side * LABEL_GAP, dy))
            annotation.set_horizontalalignment("left" if side > 0 else "right")
            box = annotation.get_window_extent(renderer).expanded(1.04, 1.2)
            if area.contains(box.x0, box.y0) and area.contains(box.x1, box.y1):
                if not any(box.overlaps(other) for other in obstacles):
                    break
        else:
            side, dy = LABEL_CANDIDATES[0]
            annotation.set_position((side * LABEL_GAP, dy))
            annotation.set_horizontalalignment("left")
            box = annotation.get_window_extent(renderer)
        if dy:
            leader = {"arrowstyle": "-", "color": "#888888", "lw": 0.7, "shrinkA": 0}
            axes.annotate(
                "",
                xy=annotation.xy,
                xytext=(side * (LABEL_GAP - 2), dy),
                textcoords="offset points",
                arrowprops=leader,
            )
        obstacles.append(box)


LABEL_GAP = 10  # points between a point's centre and its label
LABEL_CANDIDATES = list(
    dict.fromkeys((side, sign * step) for step in range(0, 120, 6) for sign in (1, -1) for side in (1, -1))
)


def _marker_box(axes, x: float, y: float, size: float, dpi: float) -> Bbox:
    """The display-pixel square a scatter marker of area ``size`` (points^2) covers around (x, y)."""
    centre_x, centre_y = axes.transData.transform((x, y))
    radius = math.sqrt(size) / 2 * dpi / 72
    return Bbox.from_bounds(centre_x - radius, centre_y - radius, 2 * radius, 2 * radius)


def entanglement_plot(entanglement: Entanglement, title: str, path: Path) -> Path:
    """Grouped bars per SID prefix depth l: share of concept items sharing levels 1..l with a retain item,
    before and after TRACER (in %). Writes a PNG to ``path`` atomically and returns ``path``."""
    before = np.asarray(entanglement.before, dtype=float) * 100
    after = np.asarray(entanglement.after, dtype=float) * 100
    levels = np.arange(len(before))
    width = 0.38
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(6.4, 5.6), dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        axes.grid(axis="x", visible=False)
        bars_before = axes.bar(
            levels - width / 2, before, width, color=OKABE_ITO["blue"], label="before erasure"
        )
        bars_after = axes.bar(levels + width / 2, after, width, color=OKABE_ITO["vermillion"], hatch="//",
                              edgecolor="white", label="after TRACER")  # fmt: skip
        for bars in (bars_before, bars_after):
            axes.bar_label(bars, labels=[_percent(v) for v in bars.datavalues], padding=2, fontsize=9)
        axes.set_xticks(levels, [_prefix_label(level + 1) for level in levels])
        axes.set_xlabel("SID prefix depth")
        axes.set_ylabel("Concept items sharing the prefix\nwith a retain item (%)")
        finite = np.concatenate([before, after])
        finite = finite[np.isfinite(finite)]
        axes.set_ylim(0, max(100.0, float(finite.max()) if finite.size else 0.0) * 1.12)
        axes.legend(loc="upper right", frameon=False)
        axes.set_title(title)
        return _save(figure, path)


def _prefix_label(depth: int) -> str:
    return "level 1" if depth == 1 else f"levels 1–{depth}"


def _percent(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.0f}%"


def _save(figure: Figure, path: Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None}, facecolor="white")
    return path
