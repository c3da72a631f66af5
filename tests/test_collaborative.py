"""Collaborative item vectors: co-watched items are close, only the training split is read."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers.sids_inputs import N_ITEMS
from tracer.cli import main
from tracer.data.sequences import SequenceData
from tracer.errors import UserError
from tracer.semantic_ids.collaborative import (
    collaborative_item_vectors,
    cooccurrence_ppmi,
    sequential_item_vectors,
)


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


def test_sids_cli_builds_collaborative_sids(prepared, tmp_path, capsys):
    data, _ = prepared
    out = tmp_path / "sids-cf"
    assert main(["sids", str(data), "--encoder", "cf", "--out", str(out), "--codebook-size", "4"]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["encoder"] == "cf" and stats["text"] is None
    assert np.load(out / "item_vectors.npy").shape[0] == N_ITEMS
    out_seq = tmp_path / "sids-cf-seq"
    assert main(["sids", str(data), "--encoder", "cf-seq", "--out", str(out_seq), "--codebook-size=3"]) == 0
    assert json.loads((out_seq / "stats.json").read_text())["encoder"] == "cf-seq"
    assert np.load(out_seq / "item_vectors.npy").shape[0] == N_ITEMS
    assert main(["sids", str(data), "--encoder", "bert", "--out", str(tmp_path / "x")]) == 2
    assert "unknown --encoder 'bert'" in capsys.readouterr().err


def early_then_late(n_users: int = 12) -> SequenceData:
    """Every user watches items 0-4 (in a rotated order), then items 5-9: one audience, two periods."""
    sequences = [
        np.concatenate([np.roll(np.arange(5), user), np.roll(np.arange(5, 10), 2 * user)]).astype(np.int64)
        for user in range(n_users)
    ]
    return SequenceData(
        user_ids=np.array([f"u{u}" for u in range(n_users)]),
        item_ids=np.array([f"i{i}" for i in range(10)]),
        train_sequences=sequences,
        valid_targets=np.zeros(n_users, dtype=np.int64),
        test_targets=np.full(n_users, 9, dtype=np.int64),
    )


def test_ppmi_of_one_short_sequence_equals_hand_computation():
    data = SequenceData(
        np.array(["u"]), np.array(["a", "b", "c", "d"]), [np.array([0, 1, 2])], np.array([3]), np.array([3])
    )
    ppmi = cooccurrence_ppmi(data, window=2).toarray()
    # pairs (0,1) and (1,2) one apart add 1, (0,2) two apart adds 1/2; item 3 is never in training
    counts = np.array([[0, 1, 0.5, 0], [1, 0, 1, 0], [0.5, 1, 0, 0], [0, 0, 0, 0]])
    rows, total = np.array([1.5, 2.0, 1.5, 0.0]), 5.0
    context = rows**0.75 * total / (rows**0.75).sum()
    expected = np.zeros((4, 4))
    for i, j in zip(*np.nonzero(counts)):
        expected[i, j] = max(0.0, np.log(counts[i, j] * total / (rows[i] * context[j])))
    np.testing.assert_allclose(ppmi, expected, rtol=1e-12)
    assert 0.0 < ppmi[0, 2] < ppmi[0, 1]  # two apart counts, less than neighbours
    assert cooccurrence_ppmi(data, window=1)[0, 2] == 0.0


# sklearn divides by the zero variance of the rank-one cf matrix when it reports explained variance
@pytest.mark.filterwarnings("ignore:.*encountered in divide:RuntimeWarning")
def test_sequential_vectors_separate_what_cf_cannot():
    """One audience watches both halves of the catalogue, but at different times: ``cf`` sees ten items
    with identical audiences, ``cf-seq`` sees two groups."""
    data = early_then_late()
    similarity = (lambda v: v @ v.T)(sequential_item_vectors(data, dim=4, window=2))
    same = [similarity[a, b] for block in (range(5), range(5, 10)) for a in block for b in block if a != b]
    other = [similarity[a, b] for a in range(5) for b in range(5, 10)]
    assert np.mean(same) > np.mean(other) + 0.5
    cf = collaborative_item_vectors(data, dim=4)
    np.testing.assert_allclose(np.abs(cf @ cf.T), 1.0, atol=1e-5)  # every audience is the same


def test_sequential_vectors_never_read_validation_or_test_items():
    base = sequential_item_vectors(early_then_late(), dim=4)
    assert base.shape == (10, 4) and base.dtype == np.float32
    rng = np.random.default_rng(0)
    data = early_then_late()
    moved = SequenceData(
        data.user_ids, data.item_ids, data.train_sequences, rng.integers(0, 10, 12), rng.integers(0, 10, 12)
    )
    np.testing.assert_array_equal(sequential_item_vectors(moved, dim=4), base)


def test_sequential_vectors_reject_a_bad_window_or_no_pairs():
    with pytest.raises(UserError, match="window must be at least 1"):
        cooccurrence_ppmi(early_then_late(), window=0)
    singles = SequenceData(
        np.array(["u", "v"]), np.array(["a", "b"]), [np.array([0]), np.array([1])], np.array([1, 0]),
        np.array([1, 0]),
    )  # fmt: skip
    with pytest.raises(UserError, match="no training sequence has two items"):
        sequential_item_vectors(singles)
