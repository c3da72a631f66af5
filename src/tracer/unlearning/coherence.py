"""The coherence neighbours of TRACER (docs/method.md §4.4, Eq. 9): for each concept item, its K_c nearest
non-concept items by cosine similarity of the frozen item vectors."""

from __future__ import annotations

import numpy as np

BLOCK_ELEMENTS = 1 << 24  # similarities held at once (64 MiB of float32), whatever the catalogue size


def nearest_retain_items(
    vectors: np.ndarray, concept_mask: np.ndarray, k: int, block_elements: int = BLOCK_ELEMENTS
) -> np.ndarray:
    """vectors (n, d), concept_mask bool (n,) -> int64 (n, k): row i holds the k retain items most
    similar to item i (most similar first) for concept items, and -1 for retain items. Concept items
    are scored in blocks of about ``block_elements`` similarities, so memory stays flat as n grows
    (one (M, n_retain) matrix is 13 GiB at 100k items)."""
    retain = np.flatnonzero(~concept_mask)
    concept = np.flatnonzero(concept_mask)
    k = min(k, len(retain))
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    retain_unit = unit[retain].T  # (d, n_retain)
    neighbours = np.full((len(vectors), k), -1, dtype=np.int64)
    rows = max(1, block_elements // max(len(retain), 1))
    for start in range(0, len(concept), rows):
        block = concept[start : start + rows]
        similarity = unit[block] @ retain_unit  # (rows, n_retain)
        best = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(similarity, best, axis=1), axis=1, kind="stable")
        neighbours[block] = retain[np.take_along_axis(best, order, axis=1)]
    return neighbours
