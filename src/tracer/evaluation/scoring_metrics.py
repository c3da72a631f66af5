"""Metrics on exact catalogue scores (docs/method.md §6.5-6.6: concept mass and concept rank).

Both take ``scores`` (U, n_items): log p(item | history) from the exact scorer (numpy or torch; -inf for
items a Filter trie removed) and ``concept_mask`` bool (n_items,), and return numpy arrays (U,).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def concept_mass(scores: np.ndarray | Tensor, concept_mask: np.ndarray | Tensor) -> np.ndarray:
    """Sum over concept items of p(item | history), p normalised over the whole catalogue. -> (U,) float64."""
    log_probs = torch.as_tensor(scores, dtype=torch.float64)
    mask = torch.as_tensor(concept_mask, dtype=torch.bool)
    probs = torch.softmax(log_probs, dim=1)
    return probs[:, mask].sum(dim=1).numpy()


def best_concept_rank(scores: np.ndarray | Tensor, concept_mask: np.ndarray | Tensor) -> np.ndarray:
    """1-based rank of each user's best-scored concept item in the whole catalogue. -> (U,) int64.

    Rank = 1 + the number of items scored strictly higher (ties count in the concept item's favour).
    """
    log_probs = torch.as_tensor(scores, dtype=torch.float64)
    mask = torch.as_tensor(concept_mask, dtype=torch.bool)
    if not bool(mask.any()):
        raise ValueError("concept_mask selects no item")
    best_concept = log_probs[:, mask].max(dim=1).values  # (U,)
    return (1 + (log_probs > best_concept[:, None]).sum(dim=1)).numpy()
