"""Transformer pieces shared by the ``tiger`` and ``causal`` backbones (docs/method.md §1.3).

Pre-norm blocks (LayerNorm: T5 uses RMSNorm, but torch's fused LayerNorm kernel is ~3x faster forward +
backward on CPU) built from ``nn.Linear`` and
``torch.nn.functional.scaled_dot_product_attention``. Attention masks are either boolean (True = may
attend) or additive floats (relative position bias with ``-inf`` on padding), broadcastable to
(B, H, S_query, S_key). Keys/values are exposed (:class:`KeyValue`) so a history can be encoded once and
reused: as a self-attention cache (``causal``) or as precomputed cross-attention memory (``tiger``).

Shapes: B batch, H heads, S / N sequence lengths, d = d_model, dh = d_head, L levels, V = max_vocab.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tracer.model.base import PAD_ITEM


class KeyValue(NamedTuple):
    """Projected keys and values of one attention layer, each (B, H, S, dh)."""

    key: Tensor
    value: Tensor

    def prepend(self, past: KeyValue) -> KeyValue:
        """Keys/values of ``past`` followed by these along the sequence axis: (B, H, S_past + S, dh)."""
        return KeyValue(torch.cat([past.key, self.key], dim=2), torch.cat([past.value, self.value], dim=2))


class Attention(nn.Module):
    """Multi-head attention with separate query and key/value projections (H heads of size dh).

    ``dropout`` acts on the attention probabilities. On CPU any value > 0 sends
    ``scaled_dot_product_attention`` to its reference path (about 20x slower fwd + bwd at B=64, S=204).
    """

    def __init__(self, d_model: int, n_heads: int, d_head: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.d_head = d_head
        self.dropout = dropout
        self.query = nn.Linear(d_model, n_heads * d_head, bias=False)
        self.key_value = nn.Linear(d_model, 2 * n_heads * d_head, bias=False)
        self.out = nn.Linear(n_heads * d_head, d_model, bias=False)

    def _split_heads(self, x: Tensor) -> Tensor:
        """(B, S, H * dh) -> (B, H, S, dh)."""
        return x.unflatten(-1, (self.n_heads, self.d_head)).transpose(1, 2)

    def project_key_value(self, x: Tensor) -> KeyValue:
        """Normalised inputs (B, S, d) -> keys and values (B, H, S, dh)."""
        key, value = self.key_value(x).chunk(2, dim=-1)
        return KeyValue(self._split_heads(key), self._split_heads(value))

    def attend(self, x: Tensor, memory: KeyValue, mask: Tensor | None = None, causal: bool = False) -> Tensor:
        """Queries from x (B, S, d) attend to ``memory`` (B, H, N, dh) -> (B, S, d).

        ``mask``: bool (True = attend) or additive float, broadcastable to (B, H, S, N).
        """
        query = self._split_heads(self.query(x))
        if mask is not None and mask.dtype != torch.bool:
            mask = mask.to(query.dtype)
        mixed = F.scaled_dot_product_attention(
            query,
            memory.key,
            memory.value,
            attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=causal,
        )  # (B, H, S, dh)
        return self.out(mixed.transpose(1, 2).flatten(2))


class FeedForward(nn.Sequential):
    """d -> d_ff (GELU, dropout) -> d."""

    def __init__(self, d_model: int, d_ff: int, dropout: float) -> None:
        super().__init__(nn.Linear(d_model, d_ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_ff, d_model))


class TransformerBlock(nn.Module):
    """Pre-norm block: self-attention, optional cross-attention, feed-forward, each with a residual.

    ``dropout`` acts on every residual branch and inside the feed-forward; ``attention_dropout`` on the
    attention probabilities.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_head: int,
        d_ff: int,
        dropout: float,
        attention_dropout: float = 0.0,
        cross_attention: bool = False,
    ) -> None:
        super().__init__()
        self.self_norm = nn.LayerNorm(d_model)
        self.self_attention = Attention(d_model, n_heads, d_head, attention_dropout)
        self.cross_norm = nn.LayerNorm(d_model) if cross_attention else None
        self.cross_attention = (
            Attention(d_model, n_heads, d_head, attention_dropout) if cross_attention else None
        )
        self.feed_forward_norm = nn.LayerNorm(d_model)
        self.feed_forward = FeedForward(d_model, d_ff, dropout)
        self.residual_dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        causal: bool = False,
        past: KeyValue | None = None,
        memory: KeyValue | None = None,
        memory_mask: Tensor | None = None,
    ) -> tuple[Tensor, KeyValue]:
        """x (B', S, d) -> (new x (B', S, d), this block's self-attention keys/values of x).

        ``past``: cached keys/values (B', H, S_past, dh) that x attends to before itself; ``mask`` then
        covers (S, S_past + S). ``memory``: cross-attention keys/values (B, H, N, dh) with B' = B * W:
        the W query rows that share a memory row are stacked along the sequence axis (no copy of the
        memory); ``memory_mask`` broadcastable to (B, H, W * S, N).
        """
        normed = self.self_norm(x)
        own = self.self_attention.project_key_value(normed)
        keys = own if past is None else own.prepend(past)
        x = x + self.residual_dropout(self.self_attention.attend(normed, keys, mask, causal))
        if self.cross_attention is not None:
            if memory is None:
                raise ValueError("a cross-attention block needs encoder memory")
            normed = self.cross_norm(x).reshape(memory.key.shape[0], -1, x.shape[-1])  # (B, W * S, d)
            mixed = self.cross_attention.attend(normed, memory, memory_mask).reshape(x.shape)
            x = x + self.residual_dropout(mixed)
        x = x + self.residual_dropout(self.feed_forward(self.feed_forward_norm(x)))
        return x, own


class LevelHeads(nn.Module):
    """One output projection per SID level, -> log-softmax over that level's vocabulary (-inf beyond)."""

    def __init__(self, d_model: int, vocab_sizes: list[int]) -> None:
        super().__init__()
        n_levels, max_vocab = len(vocab_sizes), max(vocab_sizes)
        self.weight = nn.Parameter(torch.empty(n_levels, max_vocab, d_model))
        self.bias = nn.Parameter(torch.zeros(n_levels, max_vocab))
        nn.init.uniform_(self.weight, -1 / math.sqrt(d_model), 1 / math.sqrt(d_model))
        mask = torch.arange(max_vocab)[None, :] < torch.tensor(vocab_sizes)[:, None]
        self.register_buffer("vocab_mask", mask, persistent=False)  # (L, V)

    def level_log_probs(self, hidden: Tensor, level: int) -> Tensor:
        """Hidden states (..., d) -> log-probs (..., V) of the level-``level`` token."""
        logits = F.linear(hidden, self.weight[level], self.bias[level])
        return masked_log_softmax(logits, self.vocab_mask[level])

    def all_levels_log_probs(self, hidden: Tensor) -> Tensor:
        """Hidden states (..., L, d), row l predicting level l -> log-probs (..., L, V)."""
        logits = torch.einsum("...ld,lvd->...lv", hidden, self.weight) + self.bias
        return masked_log_softmax(logits, self.vocab_mask)

    def sid_nll(self, hidden: Tensor, codes: Tensor) -> Tensor:
        """Hidden states (..., L, d), row l predicting level l, and the target codes (..., L) -> the NLL
        of each full SID (...,) in float32: the cross-entropy of :meth:`all_levels_log_probs` summed over
        levels, fused into one logsumexp over the padded (L, V) logits minus the target logits, without
        a log-softmax tensor."""
        logits = (torch.einsum("...ld,lvd->...lv", hidden, self.weight) + self.bias).float()
        logits = logits.masked_fill(~self.vocab_mask, float("-inf"))
        target = logits.gather(-1, codes[..., None])[..., 0]  # (..., L)
        return (logits.logsumexp(dim=-1) - target).sum(dim=-1)


def masked_log_softmax(logits: Tensor, vocab_mask: Tensor) -> Tensor:
    """Log-softmax in float32 over the allowed entries; -inf elsewhere."""
    return logits.float().masked_fill(~vocab_mask, float("-inf")).log_softmax(dim=-1)


def recent_history(histories: Tensor, max_history: int) -> Tensor:
    """Left-padded histories (B, T) -> (B, T') with T' <= max_history.

    Keeps each row's ``max_history`` most recent items and drops leading columns that are PAD_ITEM in
    every row (they cannot change a backbone's output, only its cost).
    """
    histories = histories[:, histories.shape[1] - min(max_history, histories.shape[1]) :]
    real_columns = (histories != PAD_ITEM).any(dim=0)  # (T',)
    if bool(real_columns.all()):
        return histories
    if not bool(real_columns.any()):
        return histories[:, :0]
    return histories[:, int(real_columns.int().argmax()) :]


def item_positions(items: Tensor) -> Tensor:
    """Left-padded items (B, T) -> position of every item counted from its row's first real item (B, T).

    PAD_ITEM columns get 0 (they are masked wherever they appear).
    """
    real = (items != PAD_ITEM).long()
    return (real.cumsum(dim=1) - 1).clamp_min(0)
