"""benchmarks/erasure_table.py: the goals table judges the named TRACER row against Retrain and lists
the baselines that beat it on both Exposure@10 and retain NDCG@10 (TRACER's variants apart)."""

from __future__ import annotations

import pandas as pd
from benchmarks.erasure_table import goals


def summary(rows: dict[str, tuple[float, float, float]]) -> pd.DataFrame:
    """One dataset x concept; ``rows`` maps a method to (Exposure@10, retain NDCG@10, seconds)."""
    return pd.DataFrame(
        [
            {
                "dataset": "d",
                "concept": "C",
                "method": method,
                "exposure@10_mean": exposure,
                "retain_ndcg@10_mean": ndcg,
                "seconds_mean": seconds,
            }  # fmt: skip
            for method, (exposure, ndcg, seconds) in rows.items()
        ]
    )


ROWS = {
    "retrain": (0.0, 0.050, 100.0),
    "tracer-anchored": (0.002, 0.045, 10.0),
    "tracer": (0.0, 0.049, 14.0),  # better on both, but a TRACER variant: never listed as a baseline
    "simnpo": (0.001, 0.046, 30.0),  # better on both
    "npo": (0.0, 0.040, 30.0),  # lower exposure, lower utility: not better on both
}


def test_goals_judge_the_named_tracer_row_and_list_the_baselines_better_on_both():
    line = goals(summary(ROWS)).splitlines()[-1]
    assert line == "| d | C | 0.0020 / 0.0000 | 90% | 10.0% | simnpo |"
    line = goals(summary(ROWS), tracer_row="tracer").splitlines()[-1]
    assert line == "| d | C | 0.0000 / 0.0000 | 98% | 14.0% | none |"


def test_a_cell_without_the_named_row_is_left_out():
    assert len(goals(summary(ROWS), tracer_row="tracer-paper").splitlines()) == 2  # the header only
