"""The self-contained HTML report: ``write_report(DIR)`` -> ``DIR/report.html`` (+ the PNGs in ``DIR/plots``).

Everything the page needs is inside the file: the PNGs as base64 data URIs, inline CSS, no scripts, and
a Content-Security-Policy that forbids the browser from fetching anything else. All text is escaped.
"""

from __future__ import annotations

import base64
import json
import math
import re
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tracer.attacks.suite import ATTACK_METRICS
from tracer.io import atomic_path
from tracer.reporting.picks import load_picks, picks_html
from tracer.reporting.plots import entanglement_plot, method_label, method_styles, tradeoff_plot
from tracer.reporting.results import (
    METRICS,
    REFERENCE_METHODS,
    Results,
    aggregate,
    higher_is_better,
    load_results,
    method_sort_key,
)

# Column headings: short words so the 14 columns fit a laptop screen; the caption explains the rest.
METRIC_LABELS = {
    "retain_ndcg@10": "Retain NDCG @10",
    "retain_recall@10": "Retain Recall @10",
    "forget_recall@10": "Forget Recall @10",
    "forget_ndcg@10": "Forget NDCG @10",
    "exposure@10": "Exposure @10",
    "exposure_fans@10": "Exposure @10 fans",
    "concept_mass": "Concept mass",
    "median_concept_rank": "Median concept rank",
    "gap_retain_ndcg@10": "Gap NDCG @10",
    "gap_exposure@10": "Gap Exposure @10",
    "top10_overlap": "Top-10 overlap",
    "attack_exposure@10": "Exposure @10 after attack",
    "seconds": "Time (s)",
    "params_updated": "Params updated",
}
ATTACK_LABELS = {
    "attack_exposure@10": "Relearn Exposure @10",
    "attack_forget_recall@10": "Relearn Forget Recall @10",
    "attack_exposure_auc": "Relearn curve mean",
    "benign_exposure@10": "Benign Exposure @10",
    "restore_exposure@10": "Restore-codes Exposure @10",
    "restore_concept_mass": "Restore-codes mass",
    "probe_auc": "Probe AUC",
}
META_FIRST = ("created", "machine", "command", "text_variant")
CONCEPT_MARK = "◆"
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
HOW_TO_READ = (
    "Each point is one method: its x position is Exposure@10 (the share of top-10 recommendation slots "
    "taken by items of the erased concept, over all test users; lower means the concept was erased "
    "better), its y position is NDCG@10 on retain users (recommendation quality on users whose next "
    "item is not in the concept; higher is better). Bars show the standard deviation over seeds. "
    "The best place is the top-left corner. The black star is Retrain (the model trained from scratch "
    "without the concept: the gold standard to get close to), the grey square is the Original model "
    "before erasure; TRACER is the large vermillion circle. A method that sits below the others bought "
    "its low exposure with lost utility."
)
CSS = """
body { font-family: "DejaVu Sans", Verdana, sans-serif; color: #1a1a1a; background: #fff; margin: 0;
       line-height: 1.45; font-size: 15px; }
main { max-width: 1280px; margin: 0 auto; padding: 24px 28px 60px; }
h1 { font-size: 28px; margin: 0 0 8px; }
h2 { font-size: 22px; margin: 44px 0 12px; padding-top: 14px; border-top: 3px solid #0072B2; }
h3 { font-size: 17px; margin: 26px 0 8px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px; margin: 10px 0 18px;
          background: #f4f6f8; padding: 12px 16px; border-radius: 6px; }
dl.meta dt { font-weight: bold; } dl.meta dd { margin: 0; word-break: break-word; }
.howto { background: #fff8e6; border-left: 4px solid #E69F00; padding: 10px 14px; max-width: 1000px; }
nav ul { columns: 2; }
.figures { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
.figures figure { margin: 0; min-width: 380px; }
.figures img { width: 100%; height: auto; border: 1px solid #ddd; }
.note { color: #555; font-style: italic; }
.table-wrap { overflow-x: auto; }
table.metrics { border-collapse: collapse; font-size: 12.5px; font-variant-numeric: tabular-nums; }
table.metrics th, table.metrics td { padding: 4px 6px; border-bottom: 1px solid #e2e2e2; text-align: right;
                                     white-space: nowrap; }
table.metrics th { background: #eef2f6; vertical-align: bottom; white-space: normal; font-size: 12px; }
table.metrics .std { display: block; font-size: 11px; color: #666; font-weight: normal; }
table.metrics th.method, table.metrics td.method { text-align: left; }
table.metrics tbody.references tr { background: #f0f0f0; font-style: italic; }
table.metrics tbody.references tr:last-child td { border-bottom: 3px double #888; }
table.metrics tr.tracer td.method { color: #B34700; font-weight: bold; }
table.metrics td.best { font-weight: bold; background: #dff3ea; }
table.metrics td.missing { color: #999; }
caption { caption-side: bottom; text-align: left; color: #555; font-size: 12px; padding-top: 6px; }
.example { border: 1px solid #ddd; border-radius: 6px; padding: 10px 14px; margin: 14px 0; }
.example h4 { margin: 0 0 6px; font-size: 15px; }
.lists { display: grid; grid-template-columns: repeat(auto-fill, minmax(168px, 1fr)); gap: 10px; }
.toplist.history { background: #f6f6f6; border-radius: 4px; padding: 0 4px 4px; }
.toplist h5 { margin: 6px 0 4px; font-size: 14px; }
ol.items { margin: 0; padding-left: 24px; font-size: 12.5px; }
ol.items li { padding: 1px 3px; }
li.concept { background: #fde3cf; font-weight: bold; }
.marker { color: #B34700; margin-right: 4px; }
.count { font-weight: normal; color: #555; font-size: 12px; }
"""


def write_report(folder: str | Path, out: str | Path | None = None) -> Path:
    """Render ``folder``'s results into one self-contained HTML file (default ``folder/report.html``);
    the PNGs are also written to ``folder/plots/``. Returns the report's path."""
    results = load_results(folder)
    out = Path(out) if out is not None else results.folder / "report.html"
    page = render_report(results, results.folder / "plots")
    with atomic_path(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return out


def render_report(results: Results, plots_dir: Path) -> str:
    """The report's HTML text; writes the plots (one trade-off, and one entanglement where measured, per
    dataset x concept) into ``plots_dir``."""
    summary = aggregate(results.rows)
    styles = method_styles(summary["method"].unique().tolist())
    sections, toc = [], []
    for index, (dataset, concept) in enumerate(results.pairs(), start=1):
        anchor = f"s{index:02d}-{_slug(dataset)}-{_slug(concept)}"
        pair = summary[(summary["dataset"] == dataset) & (summary["concept"] == concept)]
        heading = f"{dataset} · erase “{concept}”"
        tradeoff = tradeoff_plot(pair, styles, f"Trade-off: {heading}", plots_dir / f"tradeoff-{anchor}.png")
        measured = results.entanglement.get((dataset, concept))
        entangled = None
        if measured is not None:
            entangled = entanglement_plot(measured, f"Token entanglement: {heading}",
                                          plots_dir / f"entanglement-{anchor}.png")  # fmt: skip
        examples = [e for e in results.examples if (e["dataset"], e["concept"]) == (dataset, concept)]
        toc.append(f'<li><a href="#{anchor}">{escape(heading)}</a></li>')
        sections.append(_section(anchor, heading, concept, pair, tradeoff, entangled, examples))
    picks = load_picks(results.folder)
    if picks is not None:
        toc.append('<li><a href="#tuning">Tuning: search spaces and picks</a></li>')
        sections.append(picks_html(picks))
    return _page(results.meta, toc, sections)


def _page(meta: dict[str, Any], toc: list[str], sections: list[str]) -> str:
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>TRACER report</title><style>{CSS}</style></head><body><main>",
            "<h1>TRACER: concept erasure report</h1>",
            _meta_list(meta),
            f'<h3>How to read the trade-off plot</h3><p class="howto">{escape(HOW_TO_READ)}</p>',
            f"<nav><h3>Contents</h3><ul>{''.join(toc)}</ul></nav>",
            *sections,
            "</main></body></html>",
        ]
    )


def _meta_list(meta: dict[str, Any]) -> str:
    keys = [k for k in META_FIRST if k in meta] + [k for k in meta if k not in META_FIRST]
    items = []
    for key in keys:
        value = meta[key]
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        items.append(f"<dt>{escape(str(key))}</dt><dd>{escape(text)}</dd>")
    return f'<dl class="meta">{"".join(items)}</dl>'


def _section(anchor, heading, concept, pair, tradeoff: Path, entangled: Path | None, examples) -> str:
    figures = [_figure(tradeoff, f"Exposure@10 against retain NDCG@10 per method, {heading}")]
    if entangled is not None:
        figures.append(
            _figure(entangled, f"Token entanglement per SID level before and after TRACER, {heading}")
        )
    parts = [
        f'<section id="{anchor}"><h2>{escape(heading)}</h2>',
        f'<div class="figures">{"".join(figures)}</div>',
    ]
    if entangled is None:
        parts.append('<p class="note">No token-entanglement measurement for this concept.</p>')
    parts += ["<h3>All methods (mean ± std over seeds)</h3>", metrics_table(pair)]
    if any(pair[f"{m}_mean"].notna().any() for m in ATTACK_METRICS):
        parts += [
            "<h3>Does the erasure hold? The attack suite (mean ± std over seeds)</h3>",
            attack_panel(pair),
        ]
    if examples:
        parts.append(
            f'<h3>Concept fans: what each method recommends</h3><p class="note"><span class="marker">'
            f"{CONCEPT_MARK}</span> and shading mark items of the concept “{escape(concept)}”. "
            "History is oldest first, most recent last.</p>"
        )
        parts += [_example(example) for example in examples]
    parts.append("</section>")
    return "\n".join(parts)


def _figure(png: Path, alt: str) -> str:
    """An embedded PNG; figures of a row share its width in proportion to their pixel widths."""
    data = png.read_bytes()
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")  # PNG IHDR
    encoded = base64.b64encode(data).decode("ascii")
    return (
        f'<figure style="flex: {width} 1 0; max-width: {width}px"><img src="data:image/png;base64,{encoded}" '
        f'width="{width}" height="{height}" alt="{escape(alt)}"></figure>'
    )


def best_methods(pair: pd.DataFrame, metric: str) -> set[str]:
    """Methods whose mean ``metric`` is the best among the erasure methods (Retrain and Original are
    references and never win); ties all win; empty if no erasure method has a value."""
    candidates = pair[~pair["method"].isin(REFERENCE_METHODS)]
    values = candidates[f"{metric}_mean"].to_numpy(float)
    finite = np.isfinite(values)
    if not finite.any():
        return set()
    best = values[finite].max() if higher_is_better(metric) else values[finite].min()
    winners = finite & np.isclose(values, best, rtol=1e-12, atol=1e-15)
    return set(candidates["method"].to_numpy()[winners])


def metrics_table(pair: pd.DataFrame) -> str:
    """All methods x metrics (mean ± std); reference rows first in their own body; best cells bold."""
    metrics = [m for m in METRICS if pair[f"{m}_mean"].notna().any()]
    winners = {metric: best_methods(pair, metric) for metric in metrics}
    header = "".join(
        f'<th data-metric="{escape(m)}">{escape(METRIC_LABELS[m])} {"↑" if higher_is_better(m) else "↓"}</th>'
        for m in metrics
    )
    bodies = {True: [], False: []}
    for _, row in pair.iterrows():  # aggregate() order: Original, Retrain, TRACER, ...
        method = row["method"]
        cells = "".join(_metric_cell(row, m, method in winners[m]) for m in metrics)
        css = " ".join(
            filter(None, [escape(_slug(method)), "reference" if method in REFERENCE_METHODS else ""])
        )
        bodies[method in REFERENCE_METHODS].append(
            f'<tr class="{css}" data-method="{escape(method)}">'
            f'<td class="method">{escape(_row_label(method))}</td><td>{int(row["n_seeds"])}</td>{cells}</tr>'
        )
    references = f'<tbody class="references">{"".join(bodies[True])}</tbody>' if bodies[True] else ""
    return (
        '<div class="table-wrap"><table class="metrics">'
        "<caption>↑ higher is better, ↓ lower is better. <b>Bold, shaded</b>: best among the erasure "
        "methods (Retrain and Original, in grey, are references). Values: mean ± sample std over seeds. "
        "Gap: |method − Retrain|; Top-10 overlap: share of the top-10 shared with Retrain's; fans: the "
        "quarter of users with the most concept items in their history; attack: after the relearning "
        "attack.</caption>"
        f'<thead><tr><th class="method">Method</th><th title="seeds">n</th>{header}</tr></thead>'
        f'{references}<tbody class="methods">{"".join(bodies[False])}</tbody></table></div>'
    )


def attack_panel(pair: pd.DataFrame) -> str:
    """One compact row per method with every attack-suite number; Retrain's row is the reference that
    an erasure should match (lower than the Original everywhere, as close to Retrain as possible)."""
    metrics = [m for m in ATTACK_METRICS if pair[f"{m}_mean"].notna().any()]
    header = "".join(f'<th data-metric="{escape(m)}">{escape(ATTACK_LABELS[m])} ↓</th>' for m in metrics)
    rows = []
    for _, row in pair.iterrows():
        method = row["method"]
        if all(pd.isna(row[f"{m}_mean"]) for m in metrics):
            continue  # the Original is not attacked
        cells = "".join(_metric_cell(row, m, False) for m in metrics)
        css = "reference" if method in REFERENCE_METHODS else ""
        label = escape(_row_label(method))
        rows.append(
            f'<tr class="{css}" data-method="{escape(method)}"><td class="method">{label}</td>{cells}</tr>'
        )
    return (
        '<div class="table-wrap"><table class="metrics attacks">'
        "<caption>Relearning: Exposure@10 and forget Recall@10 after fine-tuning on 64 forget examples for "
        "50 steps, and the mean Exposure@10 over the whole curve (examples × steps); benign: Exposure@10 "
        "after ordinary training on retain data only; restore-codes: the erased weights with the parent's "
        "semantic IDs for the concept items; probe: ROC AUC of a logistic regression reading “next item in "
        "the concept” from the user representation (0.5 = nothing to read). Retrain is the reference."
        f'</caption><thead><tr><th class="method">Method</th>{header}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _row_label(method: str) -> str:
    suffix = {"original": " (before erasure)", "retrain": " (gold standard)"}.get(method, "")
    return method_label(method) + suffix


def _metric_cell(row: pd.Series, metric: str, best: bool) -> str:
    mean, std = row[f"{metric}_mean"], row[f"{metric}_std"]
    attribute = f' data-metric="{escape(metric)}"'
    if not math.isfinite(mean):
        return f'<td class="missing"{attribute}>—</td>'
    text = escape(_format(mean, metric))
    if math.isfinite(std):
        text += f' <span class="std">± {escape(_format(std, metric))}</span>'
    if best:
        return f'<td class="best"{attribute}><strong>{text}</strong></td>'
    return f"<td{attribute}>{text}</td>"


def _format(value: float, metric: str) -> str:
    if metric == "params_updated":
        return f"{value:,.0f}"
    if metric in ("seconds", "median_concept_rank"):
        return f"{value:,.1f}"
    return f"{value:.4f}"


def _example(example: dict[str, Any]) -> str:
    recommendations = example["recommendations"]
    columns = []
    for method in sorted(recommendations, key=method_sort_key):
        items = recommendations[method]
        hits = sum(bool(item["is_concept"]) for item in items)
        columns.append(
            f'<div class="toplist" data-method="{escape(method)}"><h5>{escape(method_label(method))} '
            f'<span class="count">{hits}/{len(items)} concept</span></h5>{_item_list(items)}</div>'
        )
    history = (
        f'<div class="toplist history"><h5>History <span class="count">oldest first</span></h5>'
        f"{_item_list(example['history'])}</div>"
    )
    return (
        f'<article class="example"><h4>User {escape(str(example["user_id"]))}: history, then each method\'s '
        f'top-10</h4><div class="lists">{history}{"".join(columns)}</div></article>'
    )


def _item_list(items: list[dict[str, Any]]) -> str:
    rows = []
    for item in items:
        title = escape(str(item["title"]))
        if item["is_concept"]:
            marker = f'<span class="marker" title="concept item">{CONCEPT_MARK}</span>'
            rows.append(f'<li class="concept">{marker}{title}</li>')
        else:
            rows.append(f"<li>{title}</li>")
    return f'<ol class="items">{"".join(rows)}</ol>'


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"
