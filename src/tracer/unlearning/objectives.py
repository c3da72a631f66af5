"""Likelihood pieces shared by the erasure losses."""

from __future__ import annotations

import torch
from torch import Tensor

from tracer.model.base import GenerativeRecommender
from tracer.training.batches import SequenceBatch, TargetBatch

Examples = TargetBatch | SequenceBatch


def target_items(batch: Examples) -> Tensor:
    """The scored items (N,): a target batch's next items, or a window batch's masked positions."""
    if isinstance(batch, SequenceBatch):
        return batch.sequences[batch.loss_mask]
    return batch.targets


def level_log_probs(model: GenerativeRecommender, batch: Examples) -> Tensor:
    """Teacher-forced log-probs (N, n_levels, max_vocab) of the batch's scored items (one pass per
    history, or per window for a :class:`SequenceBatch`)."""
    if isinstance(batch, SequenceBatch):
        return model.sequence_log_probs(batch.sequences)[batch.loss_mask]
    return model.next_item_log_probs(batch.histories, batch.targets)


def sid_log_prob(model: GenerativeRecommender, batch: Examples, log_probs: Tensor | None = None) -> Tensor:
    """log p(full SID of each scored item | its history), (N,): the sum over levels of the stored codes.
    ``log_probs``: the batch's :func:`level_log_probs` when already computed."""
    if log_probs is None:
        log_probs = level_log_probs(model, batch)
    codes = model.codes[target_items(batch)]  # (N, n_levels)
    return log_probs.gather(-1, codes[..., None]).squeeze(-1).sum(-1)


def nll(model: GenerativeRecommender, batch: Examples, log_probs: Tensor | None = None) -> Tensor:
    """Mean negative log-likelihood of the next items' SIDs (the training loss)."""
    return -sid_log_prob(model, batch, log_probs).mean()


def kl_to_reference(
    model: GenerativeRecommender, reference: GenerativeRecommender, batch: Examples
) -> Tensor:
    """Mean over examples and levels of KL(reference || model) of the per-level token distributions,
    teacher-forced on the batch's next items."""
    return level_kl(level_log_probs(model, batch), reference_log_probs(reference, batch))


def reference_log_probs(reference: GenerativeRecommender, batch: Examples) -> Tensor:
    """The frozen reference's teacher-forced log-probs (N, n_levels, max_vocab), without a graph."""
    with torch.no_grad():
        return level_log_probs(reference, batch)


def level_kl(log_p: Tensor, log_q: Tensor) -> Tensor:
    """Mean over examples and levels of KL(q || p): log_p, log_q (N, n_levels, V); tokens outside a
    level's vocabulary (log q = -inf) contribute 0."""
    q = log_q.exp()
    finite = torch.isfinite(log_q)
    terms = torch.where(finite, q * (log_q - log_p), torch.zeros_like(q))
    return terms.sum(-1).mean()
