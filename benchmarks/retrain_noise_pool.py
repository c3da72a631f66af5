"""Pool finished ``benchmarks/retrain_noise.py`` folders into one table per split.

    python benchmarks/retrain_noise_pool.py runs/retrain-noise/horror-s0 runs/retrain-noise/horror-s1 ...

Reads each folder's noise.json (nothing is run). For every model and split: the mean over the folders of
its retain NDCG@10 as a share of the folder's given Retrain and of the mean over the folder's Retrains,
with the range over folders in brackets. Models missing from a folder are left out of its mean.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from tracer.io import read_json


def pooled(folders: list[Path]) -> pd.DataFrame:
    rows = [row for folder in folders for row in read_json(folder / "noise.json")["rows"]]
    table = pd.DataFrame(rows).groupby(["split", "model"], sort=False)
    return table.agg(
        folders=("of_retrain", "size"),
        of_retrain=("of_retrain", "mean"),
        of_retrain_min=("of_retrain", "min"),
        of_retrain_max=("of_retrain", "max"),
        of_mean=("of_retrain_mean", "mean"),
        of_mean_min=("of_retrain_mean", "min"),
        of_mean_max=("of_retrain_mean", "max"),
    ).reset_index()


def markdown(table: pd.DataFrame) -> str:
    def share(mean: float, low: float, high: float) -> str:
        return f"{100 * mean:.1f}% ({100 * low:.1f}-{100 * high:.1f})"

    lines = [
        "| split | model | folders | % of the given Retrain (range) | % of the Retrains' mean (range) |",
        "|---|---|---:|---|---|",
    ]
    for row in table.itertuples():
        lines.append(
            f"| {row.split} | {row.model} | {row.folders} | "
            f"{share(row.of_retrain, row.of_retrain_min, row.of_retrain_max)} | "
            f"{share(row.of_mean, row.of_mean_min, row.of_mean_max)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folders", type=Path, nargs="+")
    print(markdown(pooled(parser.parse_args().folders)))


if __name__ == "__main__":
    main()
