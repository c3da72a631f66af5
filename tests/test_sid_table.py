"""SID table: dedup digits make every SID unique, lookups go both ways, reassign moves only the given
items, and save/load round-trips exactly."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from tracer.errors import UserError
from tracer.semantic_ids.sid_table import SidTable, dedup_digits, prefix_group_ids

LEVEL_CODES = np.array([[1, 2], [0, 0], [1, 2], [3, 1], [1, 2], [0, 0]])
IDS = ["a", "b", "c", "d", "e", "f"]


def assert_unique(table: SidTable) -> None:
    assert len(np.unique(table.codes, axis=0)) == table.n_items


def test_dedup_digits_count_within_groups_in_item_order():
    table = SidTable.from_level_codes(IDS, LEVEL_CODES, codebook_size=4)
    np.testing.assert_array_equal(table.codes[:, -1], [0, 0, 1, 0, 2, 1])
    np.testing.assert_array_equal(table.level_codes, LEVEL_CODES)
    assert table.levels == 2 and table.codebook_size == 4
    assert table.dedup_capacity == 6  # max(4, 2 * (max dedup 2 + 1))
    assert table.vocab_sizes == [4, 4, 6]
    assert_unique(table)


def test_all_items_identical_still_unique():
    codes = np.zeros((50, 3), dtype=np.int64)
    table = SidTable.from_level_codes([str(i) for i in range(50)], codes, codebook_size=8)
    np.testing.assert_array_equal(table.codes[:, -1], np.arange(50))
    assert table.dedup_capacity == 100
    assert_unique(table)


def test_random_tables_match_a_python_dedup():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 3, size=(300, 2))
    seen: dict[tuple, int] = {}
    expected = []
    for row in map(tuple, codes):
        expected.append(seen.get(row, 0))
        seen[row] = seen.get(row, 0) + 1
    np.testing.assert_array_equal(dedup_digits(codes), expected)


def test_prefix_group_ids_number_prefixes_lexicographically():
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 5, size=(400, 3))
    groups = prefix_group_ids(codes)
    for length in range(1, 4):
        _, expected = np.unique(codes[:, :length], axis=0, return_inverse=True)
        np.testing.assert_array_equal(groups[:, length - 1], expected.reshape(-1))


def test_lookups_both_ways():
    table = SidTable.from_level_codes(IDS, LEVEL_CODES, codebook_size=4)
    assert table.index_of("e") == 4
    np.testing.assert_array_equal(table.codes_of(4), [1, 2, 2])
    with pytest.raises(KeyError):
        table.index_of("zz")
    queries = np.concatenate([table.codes[::-1], [[1, 2, 3], [3, 3, 0], [9, 2, 0], [1, 2, -1], [1, 2, 6]]])
    np.testing.assert_array_equal(table.item_index_of_codes(queries), [5, 4, 3, 2, 1, 0, -1, -1, -1, -1, -1])


def test_reassign_moves_only_given_items_with_smallest_free_digit():
    table = SidTable.from_level_codes(IDS, LEVEL_CODES, codebook_size=4)
    # move "c" (dedup 1 in group (1,2)) to (0,0), where digits 0,1 are taken; "d" to its own codes (no-op)
    moved = table.reassign([2, 3], np.array([[0, 0], [3, 1]]))
    np.testing.assert_array_equal(moved.codes[2], [0, 0, 2])
    keep = np.ones(6, dtype=bool)
    keep[2] = False
    np.testing.assert_array_equal(moved.codes[keep], table.codes[keep])
    assert_unique(moved)
    np.testing.assert_array_equal(table.codes[2], [1, 2, 1])  # the original table is unchanged
    # two items moved into the same fresh group take 0 then 1; the freed digit 1 of (1,2) is reused
    again = moved.reassign([0, 4, 5], np.array([[2, 2], [2, 2], [1, 2]]))
    np.testing.assert_array_equal(again.codes[[0, 4, 5]], [[2, 2, 0], [2, 2, 1], [1, 2, 0]])
    assert_unique(again)


def test_reassign_refuses_to_exceed_dedup_capacity():
    codes = np.array([[0, 0]] * 2 + [[1, 1]] * 5)
    table = SidTable.from_level_codes([str(i) for i in range(7)], codes, codebook_size=2)
    assert table.dedup_capacity == 10
    crowded = table.reassign([0, 1], np.array([[1, 1], [1, 1]]))  # group (1,1) now uses digits 0..6
    assert crowded.codes[:, -1].max() == 6
    many = SidTable.from_level_codes([str(i) for i in range(12)], np.array([[0, 0]] * 2 + [[1, 1]] * 10), 2)
    with pytest.raises(ValueError, match="dedup_capacity"):
        SidTable(many.item_ids, many.codes, 2, dedup_capacity=10).reassign([0, 1], np.array([[1, 1], [1, 1]]))


def test_reassign_many_random_moves_keeps_sids_unique():
    rng = np.random.default_rng(1)
    table = SidTable.from_level_codes([str(i) for i in range(200)], rng.integers(0, 4, size=(200, 2)), 4)
    table = SidTable(table.item_ids, table.codes, 4, dedup_capacity=200)
    items = rng.choice(200, size=60, replace=False)
    moved = table.reassign(items, rng.integers(0, 4, size=(60, 2)))
    assert_unique(moved)
    others = np.setdiff1d(np.arange(200), items)
    np.testing.assert_array_equal(moved.codes[others], table.codes[others])


def test_invalid_tables_are_rejected():
    with pytest.raises(ValueError, match="share a semantic ID"):
        SidTable(["a", "b"], np.array([[0, 0], [0, 0]]), codebook_size=2, dedup_capacity=4)
    with pytest.raises(ValueError, match="codebook codes"):
        SidTable(["a"], np.array([[5, 0]]), codebook_size=2, dedup_capacity=4)


def test_save_load_round_trip_is_exact(tmp_path):
    table = SidTable.from_level_codes(IDS, LEVEL_CODES, codebook_size=4)
    table.save(tmp_path)
    frame = pd.read_parquet(tmp_path / "sids.parquet")
    assert list(frame.columns) == ["item_id", "c1", "c2", "dedup"]
    assert json.loads((tmp_path / "sid_table.json").read_text()) == {
        "levels": 2,
        "codebook_size": 4,
        "dedup_capacity": 6,
    }
    loaded = SidTable.load(tmp_path)
    np.testing.assert_array_equal(loaded.item_ids, table.item_ids)
    np.testing.assert_array_equal(loaded.codes, table.codes)
    assert loaded.vocab_sizes == table.vocab_sizes and loaded.codes.dtype == np.int64
    with pytest.raises(UserError, match="no SID table"):
        SidTable.load(tmp_path / "missing")


def test_trie_holds_every_item():
    table = SidTable.from_level_codes(IDS, LEVEL_CODES, codebook_size=4)
    trie = table.trie()
    assert trie.vocab_sizes == [4, 4, 6]
    assert sorted(trie.leaf_items.tolist()) == list(range(6))
    leaves = trie.nodes_of_prefixes(torch.as_tensor(table.codes))
    assert bool((leaves >= 0).all()) and len(set(leaves.tolist())) == 6
