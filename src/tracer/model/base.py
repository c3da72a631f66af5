"""The one interface every generative backbone implements (docs/method.md §1.3).

A backbone scores the semantic-ID tokens of a *next item* given a history of items. Items enter the
model as item indices; their tokens come from the SID table held as the buffer ``codes``
(shape (n_items, n_levels): the L codebook levels plus the dedup digit, so n_levels = L + 1).

Token embeddings: one table per level (``level_embeddings[l]`` of shape (vocab_sizes[l], d_model)).
An item's level-l input embedding is ``level_embeddings[l][codes[item, l]]`` unless *soft codes* are set
for it (TRACER, docs/method.md §4.2, Eq. 6): then it is the mixture
``sum_k q[item, l, k] * level_embeddings[l][k]``, in histories and in the teacher-forced decoder input
alike. Everything that embeds items goes through :meth:`GenerativeRecommender.item_token_embeddings`,
so soft codes apply everywhere automatically.

Log-probabilities are returned padded to ``max_vocab = max(vocab_sizes)`` with ``-inf`` beyond each
level's own vocabulary.

Histories are int64 item-index tensors of shape (B, T), **left-padded with PAD_ITEM (-1)**; the most
recent item is last. Backbones truncate to their own ``max_history`` (keeping the most recent items).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

PAD_ITEM = -1


@dataclass
class SoftCodes:
    """Soft token assignment of a subset of items (TRACER).

    ``items``: int64 (M,) item indices; ``probs``: float (M, n_levels, max_vocab), each row a
    distribution over the level's vocabulary (zeros beyond it). Levels that are not reassigned
    (the dedup digit) hold a one-hot row of the stored code.
    """

    items: Tensor
    probs: Tensor


class GenerativeRecommender(nn.Module, ABC):
    """Base class of the ``tiger`` and ``causal`` backbones.

    Subclasses build ``self.level_embeddings`` (an ``nn.ModuleList`` of ``nn.Embedding``, one per level)
    and implement the abstract methods. ``codes``: int64 (n_items, n_levels) buffer.
    """

    #: "target" backbones train on (history, next item) examples; "sequence" backbones on whole
    #: sequences with a loss at every position (one pass).
    batch_kind: str = "target"

    def __init__(self, codes: Tensor, vocab_sizes: list[int], d_model: int) -> None:
        super().__init__()
        codes = torch.as_tensor(codes, dtype=torch.long)
        if codes.dim() != 2 or codes.shape[1] != len(vocab_sizes):
            raise ValueError(f"codes must be (n_items, {len(vocab_sizes)}), got {tuple(codes.shape)}")
        self.register_buffer("codes", codes.clone(), persistent=True)
        self.vocab_sizes = list(vocab_sizes)
        self.max_vocab = max(vocab_sizes)
        self.d_model = d_model
        self.level_embeddings = nn.ModuleList(nn.Embedding(v, d_model) for v in vocab_sizes)
        self.soft_codes: SoftCodes | None = None
        # vocab mask: (n_levels, max_vocab) True where the token exists at that level
        mask = torch.arange(self.max_vocab)[None, :] < torch.tensor(vocab_sizes)[:, None]
        self.register_buffer("vocab_mask", mask, persistent=False)

    @property
    def n_levels(self) -> int:
        return len(self.vocab_sizes)

    @property
    def n_items(self) -> int:
        return self.codes.shape[0]

    def set_codes(self, codes: Tensor) -> None:
        """Replace the SID table (after TRACER's commit step); vocab sizes must still fit."""
        codes = torch.as_tensor(codes, dtype=torch.long, device=self.codes.device)
        if codes.shape != self.codes.shape:
            raise ValueError(f"new codes {tuple(codes.shape)} differ in shape from {tuple(self.codes.shape)}")
        self.codes.copy_(codes)

    def token_embeddings_from_codes(self, tokens: Tensor) -> Tensor:
        """Hard tokens (..., l) for levels 0..l-1 -> embeddings (..., l, d_model); l may be 0."""
        if tokens.shape[-1] == 0:
            return self.level_embeddings[0].weight.new_zeros(*tokens.shape, self.d_model)
        parts = [self.level_embeddings[level](tokens[..., level]) for level in range(tokens.shape[-1])]
        return torch.stack(parts, dim=-2)

    def item_token_embeddings(self, items: Tensor) -> Tensor:
        """Item indices (...,) -> token embeddings (..., n_levels, d_model); PAD_ITEM -> zeros.

        Uses soft codes for items that have them (see module docstring).
        """
        pad = items == PAD_ITEM
        safe = items.clamp_min(0)
        hard = self.token_embeddings_from_codes(self.codes[safe])
        if self.soft_codes is not None:
            lookup = torch.full((self.n_items,), -1, dtype=torch.long, device=items.device)
            lookup[self.soft_codes.items] = torch.arange(len(self.soft_codes.items), device=items.device)
            row = lookup[safe]
            is_soft = (row >= 0) & ~pad
            if bool(is_soft.any()):
                probs = self.soft_codes.probs[row[is_soft]]  # (S, n_levels, max_vocab)
                tables = [emb.weight for emb in self.level_embeddings]
                mixed = torch.stack(
                    [
                        probs[:, level, : tables[level].shape[0]] @ tables[level]
                        for level in range(self.n_levels)
                    ],
                    dim=1,
                )  # (S, n_levels, d_model)
                hard = hard.clone()
                hard[is_soft] = mixed.to(hard.dtype)
        return hard.masked_fill(pad[..., None, None], 0.0)

    # ----------------------------------------------------------------------------------------------
    # What every backbone implements
    # ----------------------------------------------------------------------------------------------
    @abstractmethod
    def encode_history(self, histories: Tensor) -> Any:
        """Histories (B, T) -> a cache reused by every decoding step of these users
        (encoder output for ``tiger``, key/value cache for ``causal``)."""

    @abstractmethod
    def prefix_log_probs(self, cache: Any, prefix_embeddings: Tensor) -> Tensor:
        """Log-probabilities of the next token after a prefix of the next item's tokens.

        ``prefix_embeddings``: (B, W, l, d_model), the embeddings of the first l tokens (l may be 0) of
        W candidate prefixes per user. Returns (B, W, max_vocab) log-probs of the level-l token
        (-inf beyond level l's vocabulary).
        """

    def user_representation(self, histories: Tensor) -> Tensor:
        """Histories (B, T) -> (B, d_model): the hidden state that predicts the next item's first token
        (what the probe attack reads)."""
        raise NotImplementedError(f"{type(self).__name__} does not expose a user representation")

    def prefix_log_probs_from_tokens(self, cache: Any, prefix_tokens: Tensor) -> Tensor:
        """As :meth:`prefix_log_probs` with hard prefix tokens (B, W, l) (used by decoding)."""
        return self.prefix_log_probs(cache, self.token_embeddings_from_codes(prefix_tokens))

    def candidate_level_log_probs(self, cache: Any, candidate_embeddings: Tensor) -> Tensor:
        """Teacher-forced log-probs of every level of W whole candidates after each cached history.

        ``candidate_embeddings``: (B, W, n_levels, d_model) token embeddings of the candidates. Returns
        (B, W, n_levels, max_vocab): row l is log p(token_l = k | history, the candidate's tokens < l),
        what :meth:`prefix_log_probs` gives for each prefix (this default asks it level by level; the
        built-in backbones override it with one pass).
        """
        rows = [
            self.prefix_log_probs(cache, candidate_embeddings[:, :, :level]) for level in range(self.n_levels)
        ]
        return torch.stack(rows, dim=2)

    def next_item_log_probs(self, histories: Tensor, next_items: Tensor) -> Tensor:
        """Teacher-forced log-probs of every level for (history, next item) pairs.

        histories (B, T), next_items (B,) -> (B, n_levels, max_vocab): row l is log p(token_l = k |
        history, tokens_<l of next_items). The decoder input uses :meth:`item_token_embeddings`, so
        soft codes apply.
        """
        cache = self.encode_history(histories)
        targets = self.item_token_embeddings(next_items)  # (B, n_levels, d)
        return self.candidate_level_log_probs(cache, targets[:, None])[:, 0]

    def sequence_log_probs(self, sequences: Tensor) -> Tensor:
        """Log-probs at every position of whole sequences, (B, T) -> (B, T, n_levels, max_vocab):
        position t scores item t given items < t. Only ``batch_kind == "sequence"`` backbones implement
        it (one pass); position 0 and PAD positions are undefined and must be masked by the caller."""
        raise NotImplementedError(f"{type(self).__name__} trains on (history, target) examples")

    def sequence_nll(self, sequences: Tensor, loss_mask: Tensor) -> Tensor:
        """The fused training loss of windows: (B, T) and their loss mask (B, T) -> the NLL of each
        position's full SID (B, T) float32, 0 where the mask is False. Equal to the NLL read from
        :meth:`sequence_log_probs` within float rounding, with fixed shapes and no host-device sync (no
        boolean indexing, PAD columns kept). Only ``batch_kind == "sequence"`` backbones implement it."""
        raise NotImplementedError(f"{type(self).__name__} trains on (history, target) examples")

    def next_item_nll(self, histories: Tensor, next_items: Tensor) -> Tensor:
        """The fused training loss of (history, next item) pairs: (B, T), (B,) -> the NLL of each next
        item's full SID (B,) float32, equal to the NLL read from :meth:`next_item_log_probs` within
        float rounding, with fixed shapes and no host-device sync. Only ``batch_kind == "target"``
        backbones implement it."""
        raise NotImplementedError(f"{type(self).__name__} trains on whole sequences")

    def config_dict(self) -> dict:
        """Constructor arguments (besides ``codes``) needed to rebuild this model from a checkpoint."""
        raise NotImplementedError
