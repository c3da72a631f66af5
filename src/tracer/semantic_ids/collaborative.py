"""Collaborative item vectors: who interacts with an item, instead of what its text says.

Two kinds, both fit on the **training split** only (a user's validation and test items are never read):

- ``cf`` (:func:`collaborative_item_vectors`): a truncated SVD (scikit-learn) of the item x user
  matrix, with binary entries weighted by an inverse user-activity factor (heavy users say less about
  each item) and L2-normalised rows, so items watched by the same people get nearby vectors.
- ``cf-seq`` (:func:`sequential_item_vectors`): a truncated SVD of the positive pointwise mutual
  information of items that occur *near each other in time* in a user's sequence, so items watched one
  after the other get nearby vectors: the order a next-item model predicts in.

Content vectors group MovieLens items by title, year and genre; these group them the way a sequential
recommender needs (docs/benchmarks/training.md, "Collaborative semantic IDs").

For erasure experiments note that the vectors, and so the SIDs, are fit on every training interaction,
the concept's included: Retrain keeps its parent's tokenizer unless ``rebuild_sids`` is set, which
rebuilds these vectors and SIDs without the forget targets (:mod:`tracer.unlearning.retrain`); a content
tokenizer carries no trace of the forget set.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sparse

from tracer.data.sequences import SequenceData
from tracer.errors import UserError

COLLABORATIVE_DIM = 64
SEQUENTIAL_WINDOW = 5  # items up to this many positions apart count as co-occurring
CONTEXT_SMOOTHING = 0.75  # exponent on context counts: rare items get less inflated PMI


def collaborative_item_vectors(
    sequences: SequenceData, dim: int = COLLABORATIVE_DIM, seed: int = 0
) -> np.ndarray:
    """float32 (n_items, min(dim, n_items - 1, n_users - 1)), rows L2-normalised; items without a
    training interaction get a zero row."""
    # scikit-learn loads in ~0.9 s: imported here, not with the CLI
    from sklearn.decomposition import TruncatedSVD
    from sklearn.preprocessing import normalize

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


def cooccurrence_ppmi(sequences: SequenceData, window: int = SEQUENTIAL_WINDOW) -> sparse.csr_matrix:
    """Positive PMI (n_items, n_items) of items in the same training sequence at most ``window`` apart.

    A pair d positions apart adds 1 / d to both (i, j) and (j, i): co-occurrence counts C. With row sums
    r_i, smoothed context counts c_j = r_j ** 0.75 rescaled to the same total N = sum(C):
    PPMI_ij = max(0, log(C_ij N / (r_i c_j))).
    """
    if window < 1:
        raise UserError(f"co-occurrence window must be at least 1, got {window}")
    rows, cols, weights = [], [], []
    for sequence in sequences.train_sequences:
        for distance in range(1, min(window, len(sequence) - 1) + 1):
            before, after = sequence[:-distance], sequence[distance:]
            rows += [before, after]
            cols += [after, before]
            weights += [np.full(2 * len(before), 1.0 / distance)]
    n_items = sequences.n_items
    if not rows:
        raise UserError("no training sequence has two items: sequential item vectors need some")
    pairs = (np.concatenate(rows), np.concatenate(cols))
    counts = sparse.csr_matrix((np.concatenate(weights), pairs), shape=(n_items, n_items)).tocoo()  # summed
    row_sums = np.asarray(counts.sum(1)).ravel()
    total = row_sums.sum()
    context = row_sums**CONTEXT_SMOOTHING
    context *= total / context.sum()
    pmi = np.log(counts.data * total / (row_sums[counts.row] * context[counts.col]))
    keep = pmi > 0
    return sparse.csr_matrix((pmi[keep], (counts.row[keep], counts.col[keep])), shape=(n_items, n_items))


def sequential_item_vectors(
    sequences: SequenceData, dim: int = COLLABORATIVE_DIM, window: int = SEQUENTIAL_WINDOW, seed: int = 0
) -> np.ndarray:
    """float32 (n_items, min(dim, n_items - 1)): truncated SVD of :func:`cooccurrence_ppmi`, rows
    L2-normalised; items that never co-occur with another get a zero row."""
    # scikit-learn loads in ~0.9 s: imported here, not with the CLI
    from sklearn.decomposition import TruncatedSVD
    from sklearn.preprocessing import normalize

    n_items = sequences.n_items
    dim = min(dim, n_items - 1)
    if dim < 1:
        raise UserError("sequential item vectors need at least 2 items")
    vectors = TruncatedSVD(dim, random_state=seed).fit_transform(cooccurrence_ppmi(sequences, window))
    return normalize(vectors).astype(np.float32)
