"""benchmarks/retain_split.py: retain NDCG@10 split by a shared level-1 code, on a hand-built case."""

from __future__ import annotations

import math

import pandas as pd
from benchmarks import retain_split


def write_case(root):
    data, sids = root / "data", root / "sids"
    data.mkdir()
    sids.mkdir()
    # items 1-2 are the concept (level-1 codes 7 and 8); 3 shares code 7, 4 and 5 do not share
    pd.DataFrame(
        {"item_id": ["1", "2", "3", "4", "5"], "concepts": [["X"], ["X", "Y"], ["Y"], [], ["Y"]]}
    ).to_parquet(data / "items.parquet")
    pd.DataFrame({"item_id": ["1", "2", "3", "4", "5"], "c1": [7, 8, 7, 9, 9]}).to_parquet(
        sids / "sids.parquet"
    )
    # user a: a concept target (dropped); b: target 3 (shared); c: 4, d: 5 (other)
    pd.DataFrame({"user_id": ["a", "b", "c", "d"], "item_id": ["1", "3", "4", "5"]}).to_parquet(
        data / "valid.parquet"
    )
    return data, sids


def rankings(root, name, ranks: dict[str, int]):
    """Each user's target at the given rank, other items filling the rest."""
    rows = []
    targets = {"a": "1", "b": "3", "c": "4", "d": "5"}
    for user, rank in ranks.items():
        rows.append({"user_id": user, "rank": rank, "item_id": targets[user], "score": 0.0})
        rows.append({"user_id": user, "rank": rank + 1, "item_id": "filler", "score": -1.0})
    path = root / f"{name}.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return path


def test_split_and_pooled_shares_equal_hand_computed_values(tmp_path):
    data, sids = write_case(tmp_path)
    targets = retain_split.retain_targets(data, sids, "X", "valid")
    assert list(targets.user_id) == ["b", "c", "d"] and list(targets.shared) == [True, False, False]
    reference = rankings(tmp_path, "ref", {"a": 1, "b": 1, "c": 3, "d": 11})  # d outside the top 10
    model = rankings(tmp_path, "model", {"a": 1, "b": 3, "c": 1, "d": 10})
    sums = retain_split.group_sums(targets, {"ref": reference, "model": model})
    assert sums["ref"]["shared"] == 1.0 and sums["ref"]["other"] == 1 / math.log2(4)
    assert sums["model"]["shared"] == 1 / math.log2(4)
    assert math.isclose(sums["model"]["other"], 1.0 + 1 / math.log2(11))
    table = retain_split.pooled_table([("X", sums), ("X", sums)])
    assert "| model | 50.0% |" in table  # 0.5 / 1.0 on the shared target
    assert f"| model | 50.0% | {100 * (1 + 1 / math.log2(11)) / 0.5:.1f}% |" in table
    assert "| ref | 100.0% | 100.0% |" in table and "(2 users)" in table and "(4 users)" in table
