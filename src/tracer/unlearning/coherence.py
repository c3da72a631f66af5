"""The coherence neighbours of TRACER (docs/method.md §4.4, Eq. 9): for each concept item, its K_c nearest
non-concept items by cosine similarity of the frozen item vectors."""

from __future__ import annotations

import numpy as np


def nearest_retain_items(vectors: np.ndarray, concept_mask: np.ndarray, k: int) -> np.ndarray:
    """vectors (n, d), concept_mask bool (n,) -> int64 (n, k): row i holds the k retain items most
    similar to item i (most similar first) for concept items, and -1 for retain items."""
    retain = np.flatnonzero(~concept_mask)
    concept = np.flatnonzero(concept_mask)
    k = min(k, len(retain))
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    similarity = unit[concept] @ unit[retain].T  # (M, n_retain)
    best = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(similarity, best, axis=1), axis=1, kind="stable")
    neighbours = np.full((len(vectors), k), -1, dtype=np.int64)
    neighbours[concept] = retain[np.take_along_axis(best, order, axis=1)]
    return neighbours
