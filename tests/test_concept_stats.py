"""benchmarks/concept_stats.py: 95% t-intervals over seeds, paired goal verdicts against Retrain and the
held-out summary (docs/method.md §5.1)."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
from benchmarks import concept_stats
from benchmarks.concept_stats import GOALS, held_out_summary, t_interval, verdict

EXPOSURE, RETAIN, COST, ATTACK = GOALS


def test_the_t_interval_matches_a_hand_computed_one():
    mean, half = t_interval([1.0, 2.0, 3.0, 4.0])
    # sample std sqrt(5/3) = 1.290994; t(0.975, df 3) = 3.182446 (table); 3.182446 * 1.290994 / 2 = 2.054260
    assert mean == 2.5 and half == pytest.approx(2.054260, abs=1e-6)
    assert t_interval([0.3])[0] == 0.3 and math.isnan(t_interval([0.3])[1])


def test_a_goal_is_met_only_when_the_interval_of_the_paired_margin_supports_it():
    retrain = np.array([0.001, 0.0, 0.002])
    assert verdict(EXPOSURE, retrain + 0.0004, retrain) == ("met", True)  # within the 0.0005 margin
    assert verdict(EXPOSURE, retrain + 0.0100, retrain) == ("missed", False)
    assert verdict(EXPOSURE, retrain + np.array([0.0, 0.002, 0.0]), retrain) == ("open", False)
    assert verdict(EXPOSURE, retrain[:1], retrain[:1]) == ("open", True)  # one seed: no interval
    ndcg = np.array([0.040, 0.042, 0.041])
    assert verdict(RETAIN, 0.98 * ndcg, ndcg) == ("met", True)  # at least 97% of Retrain's
    assert verdict(RETAIN, 0.96 * ndcg, ndcg) == ("missed", False)
    assert verdict(COST, np.array([9.0, 11.0, 10.0]), np.array([100.0, 100.0, 100.0])) == ("open", True)
    assert verdict(ATTACK, np.array([0.10, 0.105, 0.11]), np.array([0.1, 0.1, 0.1])) == ("met", True)
    assert verdict(ATTACK, np.array([]), np.array([])) == ("n/a", None)


def rows_of(concept: str, method: str, exposures, seconds=(1.0, 1.0, 1.0)) -> list[dict]:
    return [
        {
            "dataset": "ml-100k",
            "concept": concept,
            "method": method,
            "seed": seed,
            "retain_ndcg@10": 0.04,
            "exposure@10": exposure,
            "seconds": second,
            "attack_exposure@10": None,
        }  # fmt: skip
        for seed, (exposure, second) in enumerate(zip(exposures, seconds))
    ]


ROWS = [
    *rows_of("Horror", "retrain", [0.0, 0.0, 0.0], [100.0] * 3),
    *rows_of("Horror", "tracer", [0.0, 0.0, 0.0]),  # a tuning concept: never counted as held out
    *rows_of("War", "retrain", [0.0, 0.0, 0.0], [100.0] * 3),
    *rows_of("War", "tracer", [0.0, 0.0, 0.0]),
    *rows_of("Crime", "retrain", [0.0, 0.0, 0.0], [100.0] * 3),
    *rows_of("Crime", "tracer", [0.0, 0.002, 0.0]),  # the mean misses, and the interval is open
]


def test_the_held_out_summary_counts_concepts_met_by_the_interval_and_by_the_mean(
    tmp_path, monkeypatch, capsys
):
    folder = tmp_path / "bench"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps({"meta": {}, "rows": ROWS}))
    monkeypatch.setattr(sys, "argv", ["concept_stats", str(folder)])
    concept_stats.main()
    out = capsys.readouterr().out
    assert "Held-out concepts (2; tuning concepts Horror, Children's excluded)" in out
    assert "| tracer | 1 (1) / 2 | 2 (2) / 2 | 2 (2) / 2 | - |" in out
    assert (
        "| tracer | 3 | 0.0400 ± 0.0000 | 0.0000 ± 0.0000 | 0.0007 ± 0.0029 | 0.0007 ± 0.0029 |" in out
    )  # Crime
    import pandas as pd

    summary = held_out_summary(pd.DataFrame(ROWS), ["tracer"], ["Horror", "War"])
    assert "| tracer | 0 (0) / 1 |" in summary  # War as a tuning concept leaves Crime alone


def test_rows_of_a_running_grid_are_its_cells_without_their_attack_files(tmp_path):
    from benchmarks.erasure_table import bench_rows

    cells = tmp_path / "cells"
    cells.mkdir()
    row = {"dataset": "d", "concept": "C", "method": "tracer", "seed": 0, "exposure@10": 0.0}
    (cells / "d__c__tracer__seed0__abc.json").write_text(json.dumps(row))
    (cells / "d__c__tracer__seed0__abc-attacks.json").write_text(json.dumps({"summary": {}}))
    rows = bench_rows(str(tmp_path), from_cells=True)
    assert len(rows) == 1 and rows.iloc[0]["dataset"] == "d" and rows.iloc[0]["cell"] == "abc"
