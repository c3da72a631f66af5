"""benchmarks/sequential_erasure.py: each step's retain NDCG@10 is read on one set of users for the model
and its reference (outside all the concepts; outside those erased so far), and each step is compared
with the Retrain of its own set."""

from __future__ import annotations

import numpy as np
import pytest
from benchmarks.sequential_erasure import retain_and_exposure, table

A = np.array([True, True, False, False, False, False])  # items 0, 1
B = np.array([False, False, True, False, False, False])  # item 2


def padded(rows: list[list[int]]) -> np.ndarray:
    return np.array([row + [-1] * (10 - len(row)) for row in rows])


def test_retain_users_and_exposure_equal_their_hand_computed_values():
    ranked = padded([[0, 3], [5, 2], [3], [1, 5, 4]])  # hits at ranks 1, 2, 1, 3
    targets = np.array([0, 2, 3, 4])  # in A, in B, in neither, in neither
    got = retain_and_exposure(ranked, targets, {"A": A}, [A, B])
    assert got["retain_ndcg@10"] == pytest.approx((1 + 0.5) / 2)  # users 2 and 3
    assert got["retain_ndcg@10_so_far"] == pytest.approx((1 / np.log2(3) + 1 + 0.5) / 3)  # users 1-3
    assert got["exposure@10"] == {"A": pytest.approx((0.1 + 0.1) / 4)}
    every_user = (1 + 1 / np.log2(3) + 1 + 0.5) / 4
    assert got["retain_ndcg@10_by_prefix"] == pytest.approx(
        [every_user, got["retain_ndcg@10_so_far"], got["retain_ndcg@10"]]
    )  # outside nothing, outside A, outside A and B
    nothing_erased = retain_and_exposure(ranked, targets, {}, [A, B])
    assert nothing_erased["retain_ndcg@10_so_far"] == pytest.approx(every_user)
    assert nothing_erased["exposure@10"] == {}


def row(every: float, so_far: float, exposures: dict[str, float], by_prefix=None) -> dict:
    return {
        "retain_ndcg@10": every,
        "retain_ndcg@10_so_far": so_far,
        "retain_ndcg@10_by_prefix": by_prefix,
        "exposure@10": exposures,
    }


def test_each_step_is_compared_with_the_retrain_of_its_own_users():
    result = {
        "parent": row(0.040, 0.050, {}, by_prefix=[0.050, 0.057, 0.040]),
        "retrain": row(0.050, 0.050, {"A": 0.0, "B": 0.0}),
        "retrain_step1": row(0.045, 0.060, {"A": 0.001}),
        "step1": row(0.030, 0.054, {"A": 0.002}),
        "step2": row(0.049, 0.049, {"A": 0.0, "B": 0.0}),
    }
    lines = table(result, ["A", "B"])
    assert lines[2] == "| 0 | nothing (the parent) | 0.0400 (80.0%) | - | - |  |"
    assert lines[3] == "| 1 | A | 0.0300 (60.0%) | 0.0540 (90.0%) | 0.0570 (95.0%) | A 0.0020 (0.0010) |"
    assert lines[4] == (
        "| 2 | B | 0.0490 (98.0%) | 0.0490 (98.0%) | 0.0400 (80.0%) | A 0.0000 (0.0000), B 0.0000 (0.0000) |"
    )
    del result["retrain_step1"]  # no per-step Retrain given: step 1 has no second reading
    assert table(result, ["A", "B"])[3] == "| 1 | A | 0.0300 (60.0%) | - | - | A 0.0020 (0.0000) |"


def test_more_retrains_add_a_reading_against_their_mean():
    result = {
        "parent": row(0.040, 0.050, {}, by_prefix=[0.050, 0.057, 0.040]),
        "retrain": row(0.050, 0.050, {"A": 0.0, "B": 0.0}),
        "step1": row(0.030, 0.054, {"A": 0.002}),
        "step2": row(0.049, 0.049, {"A": 0.0, "B": 0.0}),
        "retrain_also": {"r10": row(0.030, 0.030, {}), "r11": row(0.040, 0.040, {})},  # mean 0.040
    }
    lines = table(result, ["A", "B"])
    assert "(% of the mean of 3 Retrains without all 2) |" in lines[0]
    assert lines[1] == "|---|---|---:|---:|---:|---:|---|"
    assert lines[2] == "| 0 | nothing (the parent) | 0.0400 (80.0%) | 0.0400 (100.0%) | - | - |  |"
    assert lines[4].startswith("| 2 | B | 0.0490 (98.0%) | 0.0490 (122.5%) | 0.0490 (98.0%) |")
    assert lines[-1] == (
        "The 3 Retrains without all 2, users outside all 2 (% of their mean): "
        "0.0500 (125.0%), 0.0300 (75.0%), 0.0400 (100.0%)."
    )
    result["retrain_also"] = {}  # none given: the table of one Retrain
    assert table(result, ["A", "B"])[1] == "|---|---|---:|---:|---:|---|"


def test_a_result_file_of_one_split_is_not_resumed_on_the_other(tmp_path, monkeypatch, capsys):
    import json
    import sys

    from benchmarks import sequential_erasure

    (tmp_path / "sequential.json").write_text(json.dumps({"split": "test"}))
    argv = ["sequential_erasure.py", "--parent", "p", "--retrain", "r", "--data", "d", "--out", str(tmp_path),
            "--concept", "A", "--split", "valid"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as stopped:
        sequential_erasure.main()
    assert stopped.value.code == 2 and "holds the test split, not valid" in capsys.readouterr().err
