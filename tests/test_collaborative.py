"""Collaborative item vectors: co-watched items are close, only the training split is read."""

from __future__ import annotations

import json

import numpy as np
import pytest

from test_sids_cli import N_ITEMS, prepared  # noqa: F401  (fixture)
from tracer.cli import main
from tracer.data.sequences import SequenceData
from tracer.errors import UserError
from tracer.semantic_ids.collaborative import collaborative_item_vectors


def two_audiences(valid_targets=None, test_targets=None) -> SequenceData:
    """12 users: the first six watch items 0-4, the other six items 5-9 (each user a rotation)."""
    sequences = []
    for user in range(12):
        block = np.arange(5) if user < 6 else np.arange(5, 10)
        sequences.append(np.roll(block, user).astype(np.int64))
    return SequenceData(
        user_ids=np.array([f"u{u}" for u in range(12)]),
        item_ids=np.array([f"i{i}" for i in range(10)]),
        train_sequences=sequences,
        valid_targets=np.zeros(12, dtype=np.int64) if valid_targets is None else valid_targets,
        test_targets=np.full(12, 9, dtype=np.int64) if test_targets is None else test_targets,
    )


def test_items_with_the_same_audience_are_closer_than_items_without():
    vectors = collaborative_item_vectors(two_audiences(), dim=4)
    assert vectors.shape == (10, 4) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    similarity = vectors @ vectors.T
    same = [similarity[a, b] for a in range(5) for b in range(5) if a != b]
    other = [similarity[a, b] for a in range(5) for b in range(5, 10)]
    assert min(same) > max(other) + 0.5


def test_validation_and_test_items_are_never_read():
    base = collaborative_item_vectors(two_audiences(), dim=4)
    rng = np.random.default_rng(0)
    moved = two_audiences(rng.integers(0, 10, 12), rng.integers(0, 10, 12))
    np.testing.assert_array_equal(collaborative_item_vectors(moved, dim=4), base)


def test_dimension_is_clipped_to_the_matrix_and_unused_items_get_zero_rows():
    data = two_audiences()
    data = SequenceData(
        data.user_ids,
        np.append(data.item_ids, "cold"),
        data.train_sequences,
        data.valid_targets,
        data.test_targets,
    )
    vectors = collaborative_item_vectors(data, dim=64)
    assert vectors.shape == (11, 10)  # n_items - 1 = 10 < n_users - 1 = 11 < 64
    np.testing.assert_array_equal(vectors[10], 0.0)


def test_too_small_a_training_split_is_a_user_error():
    one_user = SequenceData(
        np.array(["u"]), np.array(["a", "b"]), [np.array([0, 1])], np.array([0]), np.array([1])
    )
    with pytest.raises(UserError, match="at least 2 users"):
        collaborative_item_vectors(one_user)


def test_sids_cli_builds_collaborative_sids(prepared, tmp_path, capsys):  # noqa: F811
    data, _ = prepared
    out = tmp_path / "sids-cf"
    assert main(["sids", str(data), "--encoder", "cf", "--out", str(out), "--codebook-size", "4"]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["encoder"] == "cf" and stats["text"] is None
    assert np.load(out / "item_vectors.npy").shape[0] == N_ITEMS
    assert main(["sids", str(data), "--encoder", "bert", "--out", str(tmp_path / "x")]) == 2
    assert "unknown --encoder 'bert'" in capsys.readouterr().err
