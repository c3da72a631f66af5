"""Markdown table of a bench results folder: every method's metrics as mean ± std over seeds.

    .venv/bin/python benchmarks/erasure_table.py runs/bench-ml100k-horror

Prints the table (one per dataset x concept) for BENCHMARKS.md. A grid that is still running (no
results.json yet) is summarised from its finished cells.
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


def bench_rows(folder: str) -> pd.DataFrame:
    """The rows of ``folder/results.json``, or of its finished cells while the grid is still running."""
    if (Path(folder) / "results.json").is_file():
        return load_results(folder).rows
    cells = sorted((Path(folder) / "cells").glob("*.json"))
    return pd.DataFrame([json.loads(cell.read_text()) for cell in cells])


def markdown(folder: str) -> str:
    summary = aggregate(bench_rows(folder))
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    print(markdown(parser.parse_args().folder))
