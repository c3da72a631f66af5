"""Markdown tables of a bench results folder: every method's metrics as mean ± std over seeds, and
TRACER's standing against the goals of issue 6.

    .venv/bin/python benchmarks/erasure_table.py runs/bench-ml100k [MORE_FOLDERS ...] [--cells] \
        [--tracer NAME] [--seeds 0 1] [--settings]

Prints one table per dataset x concept (docs/benchmarks/erasure.md), then the goals table: TRACER's
Exposure@10 against Retrain's, its retain NDCG@10 and seconds as a share of Retrain's (means over seeds),
and the baselines (not Retrain, the reference, nor TRACER's ablations) that beat it on both Exposure@10 and
retain NDCG@10. ``--cells`` (or a grid that is still running, with no results.json yet) summarises the
finished cells instead of results.json. Several folders (e.g. one bench per seed) are pooled.
``--settings`` (with ``--cells``) keeps the cells of one method run at different settings apart: every
row but the original's and Retrain's is labelled ``method@<cell hash>`` (the hash ends the cell's file
name; the settings are in the bench config that wrote it).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pandas as pd

from tracer.reporting.results import aggregate, load_results

COLUMNS = [
    ("retain_ndcg@10", "retain NDCG@10"),
    ("forget_recall@10", "forget Recall@10"),
    ("exposure@10", "Exposure@10"),
    ("exposure_fans@10", "Exposure@10 fans"),
    ("concept_mass", "concept mass"),
    ("median_concept_rank", "concept rank"),
    ("top10_overlap", "top-10 overlap w/ Retrain"),
    ("attack_exposure@10", "Exposure@10 after attack"),
    ("seconds", "seconds"),
]


def cell(mean: float, std: float) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    digits = 1 if abs(mean) >= 10 else 4
    return f"{mean:.{digits}f}" if std is None or math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def bench_rows(folder: str, from_cells: bool = False) -> pd.DataFrame:
    """The rows of ``folder/results.json``, or of its finished cells while the grid is still running."""
    if not from_cells and (Path(folder) / "results.json").is_file():
        return load_results(folder).rows
    # a cell's attack-suite detail sits beside it as <cell>-attacks.json; its summary is already in the row
    cells = sorted(c for c in (Path(folder) / "cells").glob("*.json") if not c.stem.endswith("-attacks"))
    rows = pd.DataFrame([json.loads(cell.read_text()) for cell in cells])
    rows["cell"] = [cell.stem.rsplit("__", 1)[-1] for cell in cells]
    return rows


def by_settings(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows whose method (the original and Retrain apart) is labelled ``method@<cell hash>``."""
    labelled = ~rows["method"].isin(["original", "retrain"])
    return rows.assign(method=rows["method"].where(~labelled, rows["method"] + "@" + rows["cell"]))


def markdown(summary: pd.DataFrame) -> str:
    out = []
    for (dataset, concept), group in summary.groupby(["dataset", "concept"], sort=False):
        out.append(f"**{dataset}, concept {concept!r}** (seeds per row in the last column)\n")
        out.append("| method | " + " | ".join(label for _, label in COLUMNS) + " | seeds |")
        out.append("|---|" + "---:|" * (len(COLUMNS) + 1))
        for _, row in group.iterrows():
            values = [cell(row.get(f"{key}_mean"), row.get(f"{key}_std")) for key, _ in COLUMNS]
            out.append(f"| {row['method']} | " + " | ".join(values) + f" | {int(row['n_seeds'])} |")
        out.append("")
    return "\n".join(out)


def goals(summary: pd.DataFrame, tracer_row: str = "tracer-anchored") -> str:
    """TRACER (the method named ``tracer_row``) against Retrain per dataset x concept (means over seeds)
    and the baselines that dominate it."""
    out = [
        "| dataset | concept | TRACER / Retrain Exposure@10 | retain NDCG@10 vs Retrain | seconds vs Retrain "
        "| better on both Exposure@10 and retain NDCG@10 |",
        "|---|---|---|---:|---:|---|",
    ]
    for (dataset, concept), group in summary.groupby(["dataset", "concept"], sort=False):
        rows = group.set_index("method")
        if not {tracer_row, "retrain"} <= set(rows.index):
            continue
        tracer, retrain = rows.loc[tracer_row], rows.loc["retrain"]
        exposure, ndcg = "exposure@10_mean", "retain_ndcg@10_mean"
        dominating = [
            method
            for method, row in rows.iterrows()
            if method not in ("original", "retrain")  # Retrain is the reference
            and not method.startswith("tracer")  # TRACER and its ablations apart
            and row[exposure] <= tracer[exposure]
            and row[ndcg] >= tracer[ndcg]
            and (row[exposure] < tracer[exposure] or row[ndcg] > tracer[ndcg])
        ]
        out.append(
            f"| {dataset} | {concept} | {tracer[exposure]:.4f} / {retrain[exposure]:.4f} "
            f"| {tracer[ndcg] / retrain[ndcg]:.0%} | {tracer['seconds_mean'] / retrain['seconds_mean']:.1%} "
            f"| {', '.join(dominating) or 'none'} |"
        )
    return "\n".join(out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", help="bench output folders; their rows are pooled")
    parser.add_argument("--cells", action="store_true", help="read the finished cells, not results.json")
    parser.add_argument("--seeds", type=int, nargs="+", help="only these seeds (default: all)")
    parser.add_argument("--settings", action="store_true", help="keep one method's settings apart (--cells)")
    parser.add_argument("--tracer", default="tracer-anchored",
                        help="the TRACER row the goals judge (issue 6's grids: tracer-anchored)")  # fmt: skip
    args = parser.parse_args()
    if args.settings and not args.cells:
        parser.error("--settings reads cell file names: add --cells")
    rows = pd.concat([bench_rows(folder, args.cells) for folder in args.folders], ignore_index=True)
    if args.seeds:
        rows = rows[rows["seed"].isin(args.seeds)]
    if args.settings:
        rows = by_settings(rows)
    summary = aggregate(rows)
    print(markdown(summary))
    print(goals(summary, args.tracer))
