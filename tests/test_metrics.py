"""Every metric equals its value computed by hand on tiny ranked lists."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tracer.evaluation.metrics import (
    concept_fans,
    exposure_at_k,
    ndcg_at_k,
    recall_at_k,
    summarize_ranking,
)

# 4 users, lists of 5 slots; -1 marks an empty slot.
RANKED = np.array(
    [
        [3, 1, 4, 0, 2],  # target 4 at rank 3
        [7, 6, 5, -1, -1],  # target 9 absent
        [9, 8, 7, 6, 5],  # target 9 at rank 1
        [0, 1, 2, 3, 8],  # target 8 at rank 5
    ]
)
TARGETS = np.array([4, 9, 9, 8])
# concept = items {0, 5, 8, 9}
CONCEPT = np.zeros(10, dtype=bool)
CONCEPT[[0, 5, 8, 9]] = True


def test_recall_is_hit_within_k():
    assert recall_at_k(RANKED, TARGETS, 1).tolist() == [0, 0, 1, 0]
    assert recall_at_k(RANKED, TARGETS, 3).tolist() == [1, 0, 1, 0]
    assert recall_at_k(RANKED, TARGETS, 5).tolist() == [1, 0, 1, 1]


def test_ndcg_uses_log2_of_rank_plus_one():
    expected_k3 = [1 / math.log2(4), 0.0, 1.0, 0.0]
    expected_k5 = [1 / math.log2(4), 0.0, 1.0, 1 / math.log2(6)]
    assert np.allclose(ndcg_at_k(RANKED, TARGETS, 3), expected_k3)
    assert np.allclose(ndcg_at_k(RANKED, TARGETS, 5), expected_k5)


def test_short_lists_and_empty_slots_are_misses():
    ranked = np.array([[2, -1], [-1, -1]])
    assert recall_at_k(ranked, np.array([-1, -1]), 10).tolist() == [0, 0]  # -1 never matches an empty slot
    assert recall_at_k(ranked, np.array([2, 2]), 10).tolist() == [1, 0]
    assert np.allclose(ndcg_at_k(ranked, np.array([2, 2]), 10), [1.0, 0.0])


def test_exposure_counts_concept_slots_over_k():
    # top-3: [3,1,4] -> 0, [7,6,5] -> 1 (item 5), [9,8,7] -> 2, [0,1,2] -> 1
    assert np.allclose(exposure_at_k(RANKED, CONCEPT, 3), [0, 1 / 3, 2 / 3, 1 / 3])
    # top-5: [3,1,4,0,2] -> 1, [7,6,5,-,-] -> 1 (empty slots hold nothing), [9,8,7,6,5] -> 3, [..,8] -> 2
    assert np.allclose(exposure_at_k(RANKED, CONCEPT, 5), [0.2, 0.2, 0.6, 0.4])


def test_concept_fans_are_top_quarter_by_share():
    concept = np.array([True, False, False, False])
    histories = [
        np.array([0, 1, 2, 3]),  # 0.25
        np.array([0, 0, 1, 2]),  # 0.5
        np.array([1, 2]),  # 0
        np.array([0]),  # 1.0
        np.array([], dtype=np.int64),  # 0 (empty)
        np.array([0, 1]),  # 0.5
        np.array([1, 1, 1]),  # 0
        np.array([0, 0, 0, 1]),  # 0.75
    ]
    # shares sorted: 0 0 0 .25 .5 .5 .75 1 -> 75% quantile (linear) = .5 + .25 * (.75 - .5) = .5625
    assert concept_fans(histories, concept).tolist() == [False, False, False, True, False, False, False, True]


def test_concept_fans_never_include_users_without_concept_items():
    concept = np.array([True, False])
    histories = [np.array([1]), np.array([1, 1]), np.array([1]), np.array([0, 1])]
    # quantile of shares [0, 0, 0, 0.5] at 0.75 is 0.125 -> only the last user
    assert concept_fans(histories, concept).tolist() == [False, False, False, True]
    assert not concept_fans([np.array([1])] * 4, concept).any()


def test_summary_splits_retain_and_forget_users():
    histories = [np.array([0, 5]), np.array([1]), np.array([8, 9, 1]), np.array([2])]
    summary = summarize_ranking(RANKED, TARGETS, ks=(3, 5), concept_mask=CONCEPT, histories=histories)
    # all users
    assert summary["all"]["users"] == 4
    assert summary["all"]["recall@5"] == pytest.approx(3 / 4)
    assert summary["all"]["ndcg@3"] == pytest.approx((1 / math.log2(4) + 1.0) / 4)
    # retain: target 4 not in concept -> user 0 only
    assert summary["retain"]["users"] == 1
    assert summary["retain"]["recall@3"] == pytest.approx(1.0)
    assert summary["retain"]["ndcg@5"] == pytest.approx(1 / math.log2(4))
    # forget: users 1, 2, 3 (targets 9, 9, 8)
    assert summary["forget"]["users"] == 3
    assert summary["forget"]["recall@3"] == pytest.approx(1 / 3)
    assert summary["forget"]["ndcg@5"] == pytest.approx((1.0 + 1 / math.log2(6)) / 3)
    assert summary["exposure"]["exposure@3"] == pytest.approx((0 + 1 / 3 + 2 / 3 + 1 / 3) / 4)
    # shares: 1.0, 0, 0.667, 0 -> quantile .75 = 0.667 + .25 * (1 - 0.667) -> only user 0 is a fan
    assert summary["exposure_fans"]["users"] == 1
    assert summary["exposure_fans"]["exposure@5"] == pytest.approx(0.2)


def test_summary_of_an_empty_group_is_none():
    concept = np.zeros(10, dtype=bool)
    concept[0] = True
    summary = summarize_ranking(RANKED, TARGETS, ks=(5,), concept_mask=concept)
    assert summary["forget"]["users"] == 0
    assert summary["forget"]["recall@5"] is None
    assert "exposure_fans" not in summary
