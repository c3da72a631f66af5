"""``tiger``: a T5-style encoder-decoder over semantic IDs (TIGER; docs/method.md §1.3).

Encoder input: the history's items flattened into tokens, T items x L levels (oldest first), each token
= its (possibly soft) token embedding + a learned embedding of its level (its position inside the item),
followed by one learned end-of-history token (so no attention row is ever fully masked, and an empty
history still has something to attend to). Item order enters in one of two ways (``position_encoding``):

- ``"relative"`` (the T5 way, the TIGER anchor): a relative position bias between tokens, bidirectional
  log-bucketing, one bias table shared by all encoder layers (Raffel et al. 2020, sec. 2.1). Its gradient
  sends ``scaled_dot_product_attention`` to its reference path: encoder attention costs ~7x more on CPU.
- ``"absolute"`` (our CPU alternative): a learned embedding of each item's recency (0 = most recent)
  added to its tokens; attention masks stay boolean, so the fused attention kernels apply.

Both are left-padding-proof: rows are *left*-padded and the end token is last, so distances and
recencies of real tokens do not depend on the padding, and padded items are masked out of every
attention row.

Decoder input: BOS then the first l tokens of the next item, plus a learned decoder position
embedding; causal self-attention and cross-attention to the encoder output. The output at position l
goes through level l's head (log-softmax over that level's vocabulary, -inf beyond).

:meth:`TigerRecommender.encode_history` runs the encoder once and precomputes every decoder layer's
cross-attention keys/values; each decoding step only runs the (at most L tokens) decoder, with the W
candidate prefixes of a user stacked on the query axis of the cross-attention (no copy of the memory).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from tracer.model.base import PAD_ITEM, GenerativeRecommender
from tracer.model.layers import KeyValue, LevelHeads, TransformerBlock, recent_history


@dataclass
class TigerConfig:
    """Architecture of the ``tiger`` backbone. ``d_head`` None means d_model // n_heads.

    Defaults are the TIGER anchor (docs/method.md §1.3). ``dropout``: embeddings, residual branches and
    feed-forward; ``attention_dropout``: attention probabilities (T5 uses both; costly on CPU).
    ``position_encoding``: "relative" (T5 bias, ``relative_*`` settings) or "absolute" (item recency).
    """

    max_history: int = 20
    n_encoder_layers: int = 4
    n_decoder_layers: int = 4
    d_model: int = 128
    n_heads: int = 6
    d_head: int | None = 64
    d_ff: int = 1024
    dropout: float = 0.1
    attention_dropout: float = 0.1
    position_encoding: Literal["relative", "absolute"] = "relative"
    relative_buckets: int = 32
    relative_max_distance: int = 128

    @property
    def head_size(self) -> int:
        return self.d_head if self.d_head is not None else self.d_model // self.n_heads


@dataclass
class EncodedHistory:
    """The ``tiger`` cache of B histories.

    ``memory``: encoder output (B, N, d) with N = T * L + 1; ``key_padding``: bool (B, N), True for
    real tokens; ``cross_key_values``: per decoder layer the cross-attention keys/values (B, H, N, dh).
    """

    memory: Tensor
    key_padding: Tensor
    cross_key_values: list[KeyValue]


def relative_position_bucket(relative_position: Tensor, n_buckets: int, max_distance: int) -> Tensor:
    """T5 bidirectional buckets of (key - query) offsets (any shape, int64) -> bucket ids in [0, n_buckets).

    Half the buckets per direction; within a direction, offsets below a quarter of ``n_buckets`` get their
    own bucket, larger ones share logarithmically wider buckets up to ``max_distance`` (beyond: last one).
    """
    half = n_buckets // 2
    exact = half // 2
    distance = relative_position.abs()
    log_ratio = torch.log(distance.clamp_min(1).float() / exact) / math.log(max_distance / exact)
    far = (exact + (log_ratio * (half - exact)).long()).clamp_max(half - 1)
    return (relative_position > 0).long() * half + torch.where(distance < exact, distance, far)


class TigerRecommender(GenerativeRecommender):
    """Encoder-decoder over flattened SID histories; one training example per (history, next item)."""

    batch_kind = "target"

    def __init__(self, codes: Tensor, vocab_sizes: list[int], config: TigerConfig) -> None:
        super().__init__(codes, vocab_sizes, config.d_model)
        self.config = config
        d, heads, dh = config.d_model, config.n_heads, config.head_size
        self.level_position = nn.Embedding(self.n_levels, d)  # (L, d) position of a token inside its item
        self.end_of_history = nn.Parameter(torch.randn(d))
        if config.position_encoding == "relative":
            self.relative_bias = nn.Embedding(config.relative_buckets, heads)
        else:
            self.item_recency = nn.Embedding(config.max_history, d)  # (T, d), row 0 = most recent item
        self.encoder_blocks = nn.ModuleList(
            TransformerBlock(d, heads, dh, config.d_ff, config.dropout, config.attention_dropout)
            for _ in range(config.n_encoder_layers)
        )
        self.encoder_norm = nn.LayerNorm(d)
        self.bos = nn.Parameter(torch.randn(d))
        self.decoder_position = nn.Embedding(self.n_levels, d)  # BOS + at most L - 1 prefix tokens
        self.decoder_blocks = nn.ModuleList(
            TransformerBlock(
                d, heads, dh, config.d_ff, config.dropout, config.attention_dropout, cross_attention=True
            )
            for _ in range(config.n_decoder_layers)
        )
        self.decoder_norm = nn.LayerNorm(d)
        self.heads = LevelHeads(d, vocab_sizes)
        self.embedding_dropout = nn.Dropout(config.dropout)

    def config_dict(self) -> dict:
        return asdict(self.config)

    # -- encoder ------------------------------------------------------------------------------------
    def _encoder_mask(self, key_padding: Tensor) -> Tensor:
        """Key padding bool (B, N) -> attention mask: bool (B, 1, 1, N) for "absolute" positions, else
        the relative position bias as float (B, H, N, N) with -inf on padded keys."""
        if self.config.position_encoding == "absolute":
            return key_padding[:, None, None, :]
        n_tokens = key_padding.shape[1]
        index = torch.arange(n_tokens, device=key_padding.device)
        buckets = relative_position_bucket(
            index[None, :] - index[:, None], self.config.relative_buckets, self.config.relative_max_distance
        )  # (N, N) bucket of (key - query)
        bias = self.relative_bias(buckets).permute(2, 0, 1)  # (H, N, N)
        return bias.masked_fill(~key_padding[:, None, None, :], float("-inf"))

    def encode_history(self, histories: Tensor) -> EncodedHistory:
        """Histories (B, T) left-padded with PAD_ITEM -> :class:`EncodedHistory` (N = T' * L + 1 tokens)."""
        return self._encode(recent_history(histories, self.config.max_history))

    def _encode(self, histories: Tensor) -> EncodedHistory:
        """As :meth:`encode_history` for histories of at most ``max_history`` columns, taken as they are
        (leading all-PAD columns cost time but change no real token's output)."""
        batch, length = histories.shape
        tokens = self.item_token_embeddings(histories) + self.level_position.weight  # (B, T', L, d)
        if self.config.position_encoding == "absolute":
            recency = torch.arange(length - 1, -1, -1, device=histories.device)  # (T',)
            tokens = tokens + self.item_recency(recency)[:, None, :]
        end = self.end_of_history.to(tokens.dtype).expand(batch, 1, -1)
        x = self.embedding_dropout(torch.cat([tokens.flatten(1, 2), end], dim=1))  # (B, N, d)
        real = (histories != PAD_ITEM).repeat_interleave(self.n_levels, dim=1)  # (B, T' * L)
        key_padding = torch.cat([real, real.new_ones(batch, 1)], dim=1)  # (B, N)
        mask = self._encoder_mask(key_padding)
        for block in self.encoder_blocks:
            x, _ = block(x, mask=mask)
        memory = self.encoder_norm(x)
        cross = [block.cross_attention.project_key_value(memory) for block in self.decoder_blocks]
        return EncodedHistory(memory, key_padding, cross)

    # -- decoder ------------------------------------------------------------------------------------
    def _decode(self, cache: EncodedHistory, prefix_embeddings: Tensor) -> Tensor:
        """Prefixes (B, W, l, d), l < L -> decoder output (B, W, l + 1, d) after BOS + the prefix."""
        batch, width, length, d = prefix_embeddings.shape
        if length >= self.n_levels:
            raise ValueError(f"a prefix has at most {self.n_levels - 1} tokens, got {length}")
        bos = self.bos.to(prefix_embeddings.dtype).expand(batch, width, 1, d)
        x = torch.cat([bos, prefix_embeddings], dim=2) + self.decoder_position.weight[: length + 1]
        x = self.embedding_dropout(x.reshape(batch * width, length + 1, d))
        memory_mask = cache.key_padding[:, None, None, :]  # (B, 1, 1, N)
        for block, memory in zip(self.decoder_blocks, cache.cross_key_values, strict=True):
            x, _ = block(x, causal=True, memory=memory, memory_mask=memory_mask)
        return self.decoder_norm(x).reshape(batch, width, length + 1, d)

    def user_representation(self, histories: Tensor) -> Tensor:
        """Histories (B, T) -> (B, d): the decoder output at BOS, which predicts the first token."""
        cache = self.encode_history(histories)
        empty = cache.memory.new_zeros(histories.shape[0], 1, 0, self.d_model)
        return self._decode(cache, empty)[:, 0, 0]

    def prefix_log_probs(self, cache: EncodedHistory, prefix_embeddings: Tensor) -> Tensor:
        """Prefixes (B, W, l, d) -> log-probs (B, W, V) of the level-l token."""
        level = prefix_embeddings.shape[2]
        hidden = self._decode(cache, prefix_embeddings)[:, :, -1]  # (B, W, d)
        return self.heads.level_log_probs(hidden, level)

    def next_item_nll(self, histories: Tensor, next_items: Tensor) -> Tensor:
        """Histories (B, T), next items (B,) -> NLL of each next item's SID (B,) from one encoder and one
        decoder pass, the history cut to its last ``max_history`` columns (a fixed shape) and not
        trimmed further (:meth:`GenerativeRecommender.next_item_nll`)."""
        cache = self._encode(histories[:, -self.config.max_history :])
        targets = self.item_token_embeddings(next_items)  # (B, L, d)
        hidden = self._decode(cache, targets[:, None, :-1])[:, 0]  # (B, L, d): row l predicts level l
        return self.heads.sid_nll(hidden, self.codes[next_items])

    def candidate_level_log_probs(self, cache: EncodedHistory, candidate_embeddings: Tensor) -> Tensor:
        """Fused teacher forcing of W candidates per history in one decoder pass:
        (B, W, L, d) -> (B, W, L, V)."""
        hidden = self._decode(cache, candidate_embeddings[:, :, :-1])  # (B, W, L, d)
        return self.heads.all_levels_log_probs(hidden)
