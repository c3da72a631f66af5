"""Pool finished ``benchmarks/retrain_noise.py`` folders into one table per split.

    .venv/bin/python -m benchmarks.retrain_noise_pool runs/retrain-noise/horror-s{0,1,2}

Reads each folder's noise.json (nothing is run). For every model and split: the mean over the folders of
its retain NDCG@10 as a share of the folder's given Retrain and of the mean over the folder's Retrains,
with the range over folders in brackets and, for the latter, its 95% t-interval. Models missing from a
folder are left out of its mean. The last column judges the retain goal (>= 97%) against the mean of each
folder's Retrains, by the rule of benchmarks/concept_stats.py: the 95% t-interval over folders of the
paired margin decides met, missed or open. Then, per split, how often one Retrain misses a bar (97% by
default) against another Retrain of the same parent (every ordered pair of Retrains within a folder
counts once), and the Retrains' coefficient of variation over training seeds (the root mean square over
folders of each folder's standard deviation over mean).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator
from itertools import permutations
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.concept_stats import GOALS, t_interval, verdict, verdict_label
from tracer.io import read_json

RETAIN_GOAL = next(goal for goal in GOALS if goal.metric == "retain_ndcg@10")


def noise_rows(folder: Path) -> list[dict]:
    """The rows of ``folder``/noise.json; a one-line exit when it is missing or predates ``retrains_mean``."""
    path = folder / "noise.json"
    if not path.is_file():
        raise SystemExit(f"{path} not found: run benchmarks/retrain_noise.py --out {folder} first")
    rows = read_json(path)["rows"]
    if any("retrains_mean" not in row for row in rows):
        raise SystemExit(
            f"{path} predates retrains_mean: rerun benchmarks/retrain_noise.py (its runs are reused)"
        )
    return rows


def pooled(folders: list[Path]) -> pd.DataFrame:
    rows = [row for folder in folders for row in noise_rows(folder)]
    table = pd.DataFrame(rows).groupby(["split", "model"], sort=False)
    goals = table.apply(
        lambda g: verdict_label(
            *verdict(RETAIN_GOAL, g["retain_ndcg@10"].to_numpy(), g["retrains_mean"].to_numpy())
        ),
        include_groups=False,
    )
    return (
        table.agg(
            folders=("of_retrain", "size"),
            of_retrain=("of_retrain", "mean"),
            of_retrain_min=("of_retrain", "min"),
            of_retrain_max=("of_retrain", "max"),
            of_mean=("of_retrain_mean", "mean"),
            of_mean_min=("of_retrain_mean", "min"),
            of_mean_max=("of_retrain_mean", "max"),
            of_mean_half=("of_retrain_mean", lambda shares: t_interval(shares)[1]),
        )
        .join(goals.rename("goal"))
        .reset_index()
    )


def retrains_per_folder(folders: list[Path]) -> Iterator[tuple[str, list[float]]]:
    """(split, retain NDCG@10 of one folder's Retrains) for every folder and split."""
    for folder in folders:
        rows = noise_rows(folder)
        for split in dict.fromkeys(row["split"] for row in rows):
            retrains = [r for r in rows if r["split"] == split and r["model"].startswith("retrain")]
            yield split, [r["retain_ndcg@10"] for r in retrains]


def retrain_pairs_below(folders: list[Path], bar: float) -> dict[str, tuple[int, int]]:
    """Per split: (ordered pairs of a folder's Retrains, the first under ``bar`` x the second; all pairs)."""
    counts: dict[str, tuple[int, int]] = {}
    for split, retrains in retrains_per_folder(folders):
        pairs = list(permutations(retrains, 2))
        below, total = counts.get(split, (0, 0))
        counts[split] = (below + sum(a < bar * b for a, b in pairs), total + len(pairs))
    return counts


def retrain_variation(folders: list[Path]) -> dict[str, float]:
    """Per split: sqrt(mean over folders of (std / mean of the folder's Retrains)^2), std with ddof 1."""
    squares: dict[str, list[float]] = {}
    for split, retrains in retrains_per_folder(folders):
        squares.setdefault(split, []).append((np.std(retrains, ddof=1) / np.mean(retrains)) ** 2)
    return {split: float(np.sqrt(np.mean(values))) for split, values in squares.items()}


def markdown(table: pd.DataFrame) -> str:
    def share(mean: float, low: float, high: float, half: float = math.nan) -> str:
        interval = "" if math.isnan(half) else f" ± {100 * half:.1f}"
        return f"{100 * mean:.1f}%{interval} ({100 * low:.1f}-{100 * high:.1f})"

    lines = [
        "| split | model | folders | % of the given Retrain (range) "
        "| % of the Retrains' mean ± 95% CI (range) | >= 97% of the Retrains' mean |",
        "|---|---|---:|---|---|---|",
    ]
    for row in table.itertuples():
        lines.append(
            f"| {row.split} | {row.model} | {row.folders} | "
            f"{share(row.of_retrain, row.of_retrain_min, row.of_retrain_max)} | "
            f"{share(row.of_mean, row.of_mean_min, row.of_mean_max, row.of_mean_half)} | {row.goal} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folders", type=Path, nargs="+")
    parser.add_argument(
        "--bar", type=float, default=RETAIN_GOAL.scale, help="the share one Retrain must keep of another"
    )
    args = parser.parse_args()
    print(markdown(pooled(args.folders)))
    for split, (below, total) in retrain_pairs_below(args.folders, args.bar).items():
        print(
            f"{split}: a Retrain under {100 * args.bar:.0f}% of another Retrain of its parent "
            f"in {below} of {total} pairs"
        )
    for split, variation in retrain_variation(args.folders).items():
        print(f"{split}: the Retrains' coefficient of variation over training seeds {100 * variation:.1f}%")


if __name__ == "__main__":
    main()
