"""Per-concept statistics of bench grids and the held-out summary (docs/method.md §5.1).

    .venv/bin/python -m benchmarks.concept_stats runs/bench-ml100k-concepts [MORE_FOLDERS ...] [--cells] \
        [--tuning Horror "Children's"] [--methods tracer tracer-paper filter npo]

Per concept and method: the mean over seeds with its 95% t-interval, and the paired difference against
Retrain of the same seed with its interval, for retain NDCG@10 and Exposure@10; then each goal's verdict.
A goal is met only when the interval of the paired margin supports it (its whole interval on the right
side of the bound), missed when the interval lies wholly on the wrong side, and open otherwise (always
with one seed, where the point estimate is given in brackets). The goals, each against Retrain on the
same seed: Exposure@10 <= Retrain's + 0.0005, retain NDCG@10 >= 97% of Retrain's, seconds <= 10% of
Retrain's, Exposure@10 after the relearning attack <= 1.1 x Retrain's + 0.01. The held-out summary counts,
per method and goal, the concepts other than the tuning ones on which the goal is met. Rows come from the
folders' results.json (or their finished cells with --cells), pooled as in benchmarks/erasure_table.py
(run it as a module from the repository root, as above, so that it can import that script).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from benchmarks.erasure_table import bench_rows
from tracer.unlearning.sweep import EXPOSURE_MARGIN

CONFIDENCE = 0.95
REFERENCES = ("original", "retrain")


@dataclass(frozen=True)
class Goal:
    """``metric`` against a bound set by Retrain's value r on the same seed: ``scale * r + offset``;
    ``at_most``: the method must stay at or under it (else at or above it)."""

    name: str
    metric: str
    scale: float
    offset: float
    at_most: bool

    def margins(self, method: np.ndarray, retrain: np.ndarray) -> np.ndarray:
        """Per seed, how far the method is on the wrong side of its bound (<= 0: the goal holds)."""
        bound = self.scale * retrain + self.offset
        return method - bound if self.at_most else bound - method


GOALS = (
    Goal("Exposure@10 <= Retrain + 0.0005", "exposure@10", 1.0, EXPOSURE_MARGIN, at_most=True),
    Goal("retain NDCG@10 >= 97% Retrain", "retain_ndcg@10", 0.97, 0.0, at_most=False),
    Goal("cost <= 10% Retrain", "seconds", 0.10, 0.0, at_most=True),
    Goal("attack Exposure@10 <= 1.1 Retrain + 0.01", "attack_exposure@10", 1.1, 0.01, at_most=True),
)


def t_interval(values) -> tuple[float, float]:
    """(mean, half-width of its two-sided CONFIDENCE t-interval); the half-width is nan for < 2 values."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, math.nan
    quantile = stats.t.ppf(0.5 + CONFIDENCE / 2, df=len(values) - 1)
    return mean, float(quantile * values.std(ddof=1) / math.sqrt(len(values)))


def paired(rows: pd.DataFrame, method: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(method, Retrain) values of ``metric`` on the seeds both have, in seed order (one concept's rows)."""
    table = rows.pivot_table(index="seed", columns="method", values=metric, aggfunc="first")
    if method not in table or "retrain" not in table:
        return np.array([]), np.array([])
    both = table[[method, "retrain"]].dropna()
    return both[method].to_numpy(float), both["retrain"].to_numpy(float)


def verdict(goal: Goal, method: np.ndarray, retrain: np.ndarray) -> tuple[str, bool | None]:
    """("met" | "missed" | "open" | "n/a", whether the point estimate meets it)."""
    if len(method) == 0:
        return "n/a", None
    mean, half = t_interval(goal.margins(method, retrain))
    point = mean <= 0
    if math.isnan(half):
        return "open", point
    if mean + half <= 0:
        return "met", point
    return ("missed" if mean - half > 0 else "open"), point


def _interval(mean: float, half: float, digits: int = 4) -> str:
    return f"{mean:.{digits}f}" + ("" if math.isnan(half) else f" ± {half:.{digits}f}")


def verdict_label(state: str, point: bool | None) -> str:
    symbol = {"met": "met", "missed": "missed", "n/a": "-"}.get(state)
    return symbol or f"open ({'meets' if point else 'misses'} at the mean)"


def concept_tables(rows: pd.DataFrame, methods: list[str]) -> str:
    """One markdown table per (dataset, concept): means and paired differences with 95% intervals, and
    each goal's verdict."""
    out = []
    for (dataset, concept), group in rows.groupby(["dataset", "concept"], sort=False):
        out += [
            f"**{dataset}, {concept}** (mean ± 95% t-interval over seeds; Δ: paired difference to Retrain)\n",
            "| method | seeds | retain NDCG@10 | Δ retain NDCG@10 | Exposure@10 | Δ Exposure@10 | "
            + " | ".join(goal.name for goal in GOALS)
            + " |",
            "|---|---:|---:|---:|---:|---:|" + "---|" * len(GOALS),
        ]
        for method in [m for m in methods if m in set(group["method"])]:
            cells = []
            for metric in ("retain_ndcg@10", "exposure@10"):
                values, retrain = paired(group, method, metric)
                cells.append(_interval(*t_interval(values)) if len(values) else "-")
                cells.append(_interval(*t_interval(values - retrain)) if len(values) else "-")
            goals = [verdict_label(*verdict(goal, *paired(group, method, goal.metric))) for goal in GOALS]
            seeds = len(paired(group, method, "retain_ndcg@10")[0])
            out.append(f"| {method} | {seeds} | " + " | ".join(cells + goals) + " |")
        out.append("")
    return "\n".join(out)


def held_out_summary(rows: pd.DataFrame, methods: list[str], tuning: list[str]) -> str:
    """Per method and goal: on how many held-out concepts the goal is met (the interval supports it),
    and on how many the mean meets it."""
    held_out = rows[~rows["concept"].isin(tuning)]
    pairs = held_out[["dataset", "concept"]].drop_duplicates().itertuples(index=False)
    groups = [held_out[(held_out["dataset"] == d) & (held_out["concept"] == c)] for d, c in pairs]
    lines = [
        f"Held-out concepts ({len(groups)}; tuning concepts {', '.join(tuning)} excluded): met by the 95% "
        "interval (by the mean in brackets) / concepts measured.\n",
        "| method | " + " | ".join(goal.name for goal in GOALS) + " |",
        "|---|" + "---:|" * len(GOALS),
    ]
    for method in methods:
        cells = []
        for goal in GOALS:
            verdicts = [verdict(goal, *paired(group, method, goal.metric)) for group in groups]
            measured = [(state, point) for state, point in verdicts if state != "n/a"]
            met = sum(state == "met" for state, _ in measured)
            by_mean = sum(bool(point) for _, point in measured)
            cells.append(f"{met} ({by_mean}) / {len(measured)}" if measured else "-")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folders", nargs="+", help="bench output folders; their rows are pooled")
    parser.add_argument("--cells", action="store_true", help="read the finished cells, not results.json")
    parser.add_argument("--tuning", nargs="+", default=["Horror", "Children's"], help="tuning concepts")
    parser.add_argument("--methods", nargs="+", help="methods to show (default: every erasure method)")
    args = parser.parse_args()
    rows = pd.concat([bench_rows(folder, args.cells) for folder in args.folders], ignore_index=True)
    rows = rows.drop_duplicates(["dataset", "concept", "method", "seed"], keep="last")
    methods = args.methods or [m for m in dict.fromkeys(rows["method"]) if m not in REFERENCES]
    print(concept_tables(rows, methods))
    print(held_out_summary(rows, methods, args.tuning))


if __name__ == "__main__":
    main()
