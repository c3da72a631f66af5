"""TRACER's coherence neighbours scored in blocks: the same neighbours as one big similarity matrix."""

from __future__ import annotations

import numpy as np

from tracer.unlearning.coherence import nearest_retain_items


def test_blocks_give_the_neighbours_of_the_whole_matrix():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(300, 8)).astype(np.float32)
    mask = rng.random(300) < 0.3
    whole = nearest_retain_items(vectors, mask, 5, block_elements=10**9)
    for block_elements in (1, 250, 1000):  # one row per block, a few rows, rows not dividing M
        assert np.array_equal(nearest_retain_items(vectors, mask, 5, block_elements=block_elements), whole)
    assert (whole[~mask] == -1).all() and (whole[mask] >= 0).all()
    assert not mask[whole[mask]].any()  # neighbours are retain items
