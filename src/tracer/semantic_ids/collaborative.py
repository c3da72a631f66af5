"""Collaborative item vectors: who interacts with an item, instead of what its text says.

A truncated SVD (scikit-learn) of the item x user matrix of the **training split** only (a user's
validation and test items are never read), with binary entries weighted by an inverse user-activity
factor (heavy users say less about each item) and L2-normalised rows, so items watched by the same
people get nearby vectors. Content vectors group MovieLens items by title, year and genre; these group
them the way a sequential recommender needs (BENCHMARKS.md, "Collaborative semantic IDs").

For erasure experiments note that the vectors, and so the SIDs, are fit on every training interaction,
the concept's included: Retrain shares the tokenizer with the original model either way, but a content
tokenizer carries no trace of the forget set.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sparse
from sklearn.decomposition import TruncatedSVD
from sklearn.preprocessing import normalize

from tracer.data.sequences import SequenceData
from tracer.errors import UserError

COLLABORATIVE_DIM = 64


def collaborative_item_vectors(
    sequences: SequenceData, dim: int = COLLABORATIVE_DIM, seed: int = 0
) -> np.ndarray:
    """float32 (n_items, min(dim, n_items - 1, n_users - 1)), rows L2-normalised; items without a
    training interaction get a zero row."""
    n_items, n_users = sequences.n_items, sequences.n_users
    dim = min(dim, n_items - 1, n_users - 1)
    if dim < 1:
        raise UserError("collaborative vectors need at least 2 users and 2 items in the training split")
    users = np.concatenate([np.full(len(seq), user) for user, seq in enumerate(sequences.train_sequences)])
    items = np.concatenate(sequences.train_sequences).astype(np.int64)
    if len(items) == 0:
        raise UserError("the training split has no interactions: collaborative vectors need some")
    matrix = sparse.csr_matrix((np.ones(len(items)), (items, users)), shape=(n_items, n_users))
    matrix.data[:] = 1.0  # repeated interactions count once
    activity = np.asarray(matrix.sum(0)).ravel()
    weights = np.log(n_items / (1.0 + activity))  # (n_users,): heavy users weigh less
    weighted = normalize(matrix @ sparse.diags(weights))
    vectors = TruncatedSVD(dim, random_state=seed).fit_transform(weighted)
    return normalize(vectors).astype(np.float32)
