"""SID statistics equal hand-computed values; token entanglement equals a brute-force computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tracer.semantic_ids.sid_table import SidTable
from tracer.semantic_ids.stats import (
    collision_rate,
    format_stats_table,
    perplexity,
    sid_statistics,
    token_entanglement,
)


def brute_entanglement(codes: np.ndarray, mask: np.ndarray) -> list[float]:
    shares = []
    for length in range(1, codes.shape[1]):
        retain_prefixes = {tuple(codes[i, :length]) for i in range(len(codes)) if not mask[i]}
        concept_rows = [codes[i] for i in range(len(codes)) if mask[i]]
        shares.append(sum(tuple(row[:length]) in retain_prefixes for row in concept_rows) / len(concept_rows))
    return shares


@pytest.mark.parametrize("seed", range(6))
def test_entanglement_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    n, levels, size = int(rng.integers(5, 60)), int(rng.integers(1, 4)), int(rng.integers(2, 5))
    table = SidTable.from_level_codes([str(i) for i in range(n)], rng.integers(0, size, (n, levels)), size)
    mask = rng.random(n) < 0.3
    mask[0] = True
    assert token_entanglement(table.codes, mask) == pytest.approx(brute_entanglement(table.codes, mask))


def test_entanglement_by_hand():
    # items: concept = {0, 1}; item 0 shares (1,) and (1,2) with retain item 2; item 1 shares only (1,)
    codes = np.array([[1, 2, 0], [1, 3, 0], [1, 2, 1], [0, 0, 0]])
    mask = np.array([True, True, False, False])
    assert token_entanglement(codes, mask) == [1.0, 0.5]
    with pytest.raises(ValueError, match="no items"):
        token_entanglement(codes, np.zeros(4, dtype=bool))


def test_collision_usage_perplexity_by_hand():
    # level codes: (0,1) x3, (2,1) x1, (3,0) x1 -> 3 of 5 items collide
    level_codes = np.array([[0, 1], [0, 1], [2, 1], [3, 0], [0, 1]])
    table = SidTable.from_level_codes(list("abcde"), level_codes, codebook_size=4)
    stats = sid_statistics(table)
    assert stats["collision_rate"] == pytest.approx(0.6) == collision_rate(level_codes)
    assert stats["max_dedup"] == 2 and stats["n_items"] == 5
    first, second = stats["per_level"]
    assert first["usage"] == pytest.approx(3 / 4) and second["usage"] == pytest.approx(2 / 4)
    p1 = np.array([3, 1, 1]) / 5
    assert first["perplexity"] == pytest.approx(math.exp(-(p1 * np.log(p1)).sum()))
    p2 = np.array([4, 1]) / 5
    assert second["perplexity"] == pytest.approx(math.exp(-(p2 * np.log(p2)).sum()))
    assert first["distinct_prefixes"] == 3 and second["distinct_prefixes"] == 3
    text = format_stats_table(stats)
    assert "collision rate 0.6000" in text and "max dedup 2" in text


def test_perplexity_extremes():
    assert perplexity(np.arange(8), 8) == pytest.approx(8.0)
    assert perplexity(np.zeros(8, dtype=np.int64), 8) == pytest.approx(1.0)
