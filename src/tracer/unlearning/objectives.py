"""Likelihood pieces shared by the erasure losses."""

from __future__ import annotations

import torch
from torch import Tensor

from tracer.model.base import GenerativeRecommender
from tracer.training.batches import SequenceBatch
from tracer.unlearning.batches import TargetBatch

Examples = TargetBatch | SequenceBatch


def target_items(batch: Examples) -> Tensor:
    """The scored items (N,): a target batch's next items, or a window batch's masked positions."""
    if isinstance(batch, SequenceBatch):
        return batch.sequences[batch.loss_mask]
    return batch.items


def level_log_probs(model: GenerativeRecommender, batch: Examples) -> Tensor:
    """Teacher-forced log-probs (N, n_levels, max_vocab) of the batch's scored items (one pass per
    history, or per window for a :class:`SequenceBatch`)."""
    if isinstance(batch, SequenceBatch):
        return model.sequence_log_probs(batch.sequences)[batch.loss_mask]
    return model.next_item_log_probs(batch.histories, batch.items)


def sid_log_prob(model: GenerativeRecommender, batch: Examples) -> Tensor:
    """log p(full SID of each scored item | its history), (N,): the sum over levels of the stored codes."""
    log_probs = level_log_probs(model, batch)
    codes = model.codes[target_items(batch)]  # (N, n_levels)
    return log_probs.gather(-1, codes[..., None]).squeeze(-1).sum(-1)


def nll(model: GenerativeRecommender, batch: Examples) -> Tensor:
    """Mean negative log-likelihood of the next items' SIDs (the training loss)."""
    return -sid_log_prob(model, batch).mean()


def kl_to_reference(
    model: GenerativeRecommender, reference: GenerativeRecommender, batch: Examples
) -> Tensor:
    """Mean over examples and levels of KL(reference || model) of the per-level token distributions,
    teacher-forced on the batch's next items."""
    log_p = level_log_probs(model, batch)
    with torch.no_grad():
        log_q = level_log_probs(reference, batch)
    q = log_q.exp()
    finite = torch.isfinite(log_q)
    terms = torch.where(finite, q * (log_q - log_p), torch.zeros_like(q))
    return terms.sum(-1).mean()
