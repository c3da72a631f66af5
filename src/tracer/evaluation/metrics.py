"""Ranking metrics as pure functions over ranked lists (docs/method.md §6).

A ranked list is an int array ``ranked`` of shape (U, K') holding item indices, best first; ``-1``
marks an empty slot (fewer valid items than K') and always counts as a miss. Leave-one-out gives one
held-out target per user (``targets`` (U,)), so Recall@K is the hit rate and the ideal DCG is 1.
Every per-user function returns a float array (U,); :func:`summarize_ranking` averages them.
"""

from __future__ import annotations

import numpy as np

DEFAULT_KS = (5, 10, 20)


def _top_k(ranked: np.ndarray, k: int) -> np.ndarray:
    """(U, K') -> (U, k): the first k slots, padded with -1 when K' < k."""
    ranked = np.asarray(ranked)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    top = ranked[:, :k]
    if top.shape[1] < k:
        top = np.pad(top, ((0, 0), (0, k - top.shape[1])), constant_values=-1)
    return top


def _hit_rank(ranked: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
    """1-based rank of each user's target within the top k, 0 where it is absent. (U,) int."""
    top = _top_k(ranked, k)
    targets = np.asarray(targets)
    if len(targets) != len(top):
        raise ValueError(f"{len(top)} ranked lists but {len(targets)} targets")
    hits = (top == targets[:, None]) & (top >= 0)
    first = hits.argmax(axis=1)
    return np.where(hits.any(axis=1), first + 1, 0)


def recall_at_k(ranked: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
    """Per-user Recall@k with one target: 1.0 if the target is in the top k, else 0.0. (U,)."""
    return (_hit_rank(ranked, targets, k) > 0).astype(np.float64)


def ndcg_at_k(ranked: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
    """Per-user NDCG@k with one target: 1 / log2(rank + 1) if the target is at rank <= k, else 0. (U,)."""
    rank = _hit_rank(ranked, targets, k)
    gains = np.zeros(len(rank), dtype=np.float64)
    hit = rank > 0
    gains[hit] = 1.0 / np.log2(rank[hit] + 1.0)
    return gains


def exposure_at_k(ranked: np.ndarray, concept_mask: np.ndarray, k: int) -> np.ndarray:
    """Per-user share of the k top slots that hold a concept item (empty slots hold none). (U,)."""
    top = _top_k(ranked, k)
    concept_mask = np.asarray(concept_mask, dtype=bool)
    in_concept = concept_mask[np.clip(top, 0, None)] & (top >= 0)
    return in_concept.sum(axis=1) / float(k)


def concept_share(histories: list[np.ndarray], concept_mask: np.ndarray) -> np.ndarray:
    """Share of concept items in each user's history (0 for an empty history). (U,)."""
    concept_mask = np.asarray(concept_mask, dtype=bool)
    return np.array(
        [float(concept_mask[np.asarray(h, dtype=np.int64)].mean()) if len(h) else 0.0 for h in histories],
        dtype=np.float64,
    )


def concept_fans(histories: list[np.ndarray], concept_mask: np.ndarray, quantile: float = 0.75) -> np.ndarray:
    """Users whose concept share is at or above the ``quantile`` of all users' shares (the top
    quarter by default), excluding users with no concept item at all. bool (U,).

    Users tied at the threshold are all fans, so the group can be slightly larger than a quarter.
    """
    shares = concept_share(histories, concept_mask)
    if len(shares) == 0:
        return np.zeros(0, dtype=bool)
    threshold = np.quantile(shares, quantile)
    return (shares >= threshold) & (shares > 0)


def _mean_or_none(values: np.ndarray) -> float | None:
    return float(values.mean()) if len(values) else None


def _utility(ranked: np.ndarray, targets: np.ndarray, ks: tuple[int, ...]) -> dict:
    """Mean Recall@k and NDCG@k of a group of users, plus its size."""
    out: dict = {"users": len(targets)}
    for k in ks:
        out[f"recall@{k}"] = _mean_or_none(recall_at_k(ranked, targets, k))
    for k in ks:
        out[f"ndcg@{k}"] = _mean_or_none(ndcg_at_k(ranked, targets, k))
    return out


def _exposure(ranked: np.ndarray, concept_mask: np.ndarray, ks: tuple[int, ...]) -> dict:
    out: dict = {"users": len(ranked)}
    for k in ks:
        out[f"exposure@{k}"] = _mean_or_none(exposure_at_k(ranked, concept_mask, k))
    return out


def summarize_ranking(
    ranked: np.ndarray,
    targets: np.ndarray,
    ks: tuple[int, ...] = DEFAULT_KS,
    concept_mask: np.ndarray | None = None,
    histories: list[np.ndarray] | None = None,
) -> dict:
    """Mean metrics of a ranking; a metric over an empty group is ``None``.

    Always: ``{"all": {"users", "recall@k"..., "ndcg@k"...}}``. With ``concept_mask`` (bool (n_items,))
    also ``"retain"`` (users whose target is not in the concept) and ``"forget"`` (target in the
    concept) with the same keys, and ``"exposure"`` (``{"users", "exposure@k"...}`` over all users).
    With ``histories`` too, ``"exposure_fans"`` over the concept fans (:func:`concept_fans`).
    """
    ranked = np.asarray(ranked)
    targets = np.asarray(targets)
    ks = tuple(int(k) for k in ks)
    summary = {"all": _utility(ranked, targets, ks)}
    if concept_mask is None:
        return summary
    concept_mask = np.asarray(concept_mask, dtype=bool)
    forget_users = concept_mask[targets]
    summary["retain"] = _utility(ranked[~forget_users], targets[~forget_users], ks)
    summary["forget"] = _utility(ranked[forget_users], targets[forget_users], ks)
    summary["exposure"] = _exposure(ranked, concept_mask, ks)
    if histories is not None:
        if len(histories) != len(ranked):
            raise ValueError(f"{len(ranked)} ranked lists but {len(histories)} histories")
        fans = concept_fans(histories, concept_mask)
        summary["exposure_fans"] = _exposure(ranked[fans], concept_mask, ks)
    return summary
