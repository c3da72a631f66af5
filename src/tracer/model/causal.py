"""``causal``: a decoder-only transformer over the flattened SID stream (docs/method.md §1.3).

Stream of a history of T items: [BOS, item_0 token_0..token_{L-1}, item_1 tokens, ...]. Each item token's
input = its (possibly soft) token embedding + a learned level embedding + a learned item-position
embedding, positions counted from the row's first real item. Histories are left-padded: padded tokens
sit between BOS and the first real item and are masked out of every attention row, and positions ignore
them, so padding never changes the output at a real position (BOS is always visible, so no row is
empty).

The log-probs of item t's level-l token are read at the stream position just before that token (for
level 0 of the first real item: at BOS). :meth:`CausalRecommender.sequence_log_probs` scores every item
of a sequence in one pass; :meth:`CausalRecommender.encode_history` keeps every layer's keys/values of
the history, and :meth:`CausalRecommender.prefix_log_probs` then runs only the W x l prefix tokens: the
W candidates are stacked on one axis and a block-diagonal causal mask lets each see the shared history
cache and its own earlier tokens only. :meth:`CausalRecommender.candidate_level_log_probs` scores every
level of whole candidates from one such pass of their first L - 1 tokens.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from tracer.model.base import PAD_ITEM, GenerativeRecommender
from tracer.model.layers import (
    KeyValue,
    LevelHeads,
    TransformerBlock,
    item_positions,
    masked_log_softmax,
    recent_history,
)


@dataclass
class CausalConfig:
    """Architecture of the ``causal`` backbone. ``d_head`` None means d_model // n_heads.

    ``dropout``: embeddings, residual branches and feed-forward; ``attention_dropout``: attention
    probabilities (off by default: on CPU it makes attention about 20x slower).
    """

    max_history: int = 50
    n_layers: int = 2
    d_model: int = 128
    n_heads: int = 4
    d_head: int | None = None
    d_ff: int = 512
    dropout: float = 0.1
    attention_dropout: float = 0.0

    @property
    def head_size(self) -> int:
        return self.d_head if self.d_head is not None else self.d_model // self.n_heads


@dataclass
class HistoryCache:
    """The ``causal`` cache of B histories (S = 1 + T * L stream tokens).

    ``key_values``: per layer the self-attention keys/values (B, H, S, dh); ``visible``: bool (B, S),
    True for BOS and real tokens; ``next_position``: int64 (B,) item position of the next item;
    ``last_hidden``: (B, d) final hidden state that predicts the next item's level-0 token.
    """

    key_values: list[KeyValue]
    visible: Tensor
    next_position: Tensor
    last_hidden: Tensor


class CausalRecommender(GenerativeRecommender):
    """Decoder-only SID model; trains on whole sequences with a loss at every item in one pass."""

    batch_kind = "sequence"

    def __init__(self, codes: Tensor, vocab_sizes: list[int], config: CausalConfig) -> None:
        super().__init__(codes, vocab_sizes, config.d_model)
        self.config = config
        d = config.d_model
        self.bos = nn.Parameter(torch.randn(d))
        self.level_embedding = nn.Embedding(self.n_levels, d)
        self.item_position = nn.Embedding(config.max_history + 1, d)  # history items + the next item
        self.blocks = nn.ModuleList(
            TransformerBlock(
                d, config.n_heads, config.head_size, config.d_ff, config.dropout, config.attention_dropout
            )
            for _ in range(config.n_layers)
        )
        self.final_norm = nn.LayerNorm(d)
        self.heads = LevelHeads(d, vocab_sizes)
        self.embedding_dropout = nn.Dropout(config.dropout)

    def config_dict(self) -> dict:
        return asdict(self.config)

    # -- shared pieces ------------------------------------------------------------------------------
    def _stream(self, items: Tensor) -> tuple[Tensor, Tensor]:
        """Left-padded items (B, T) -> stream inputs (B, 1 + T * L, d) and visibility bool (B, 1 + T * L)."""
        batch = items.shape[0]
        positions = item_positions(items)  # (B, T)
        tokens = self.item_token_embeddings(items) + self.level_embedding.weight  # (B, T, L, d)
        tokens = tokens + self.item_position(positions)[:, :, None, :]
        bos = self.bos.to(tokens.dtype).expand(batch, 1, -1)
        x = torch.cat([bos, tokens.flatten(1, 2)], dim=1)
        real = (items != PAD_ITEM).repeat_interleave(self.n_levels, dim=1)  # (B, T * L)
        visible = torch.cat([real.new_ones(batch, 1), real], dim=1)
        return self.embedding_dropout(x), visible

    def _run(self, x: Tensor, visible: Tensor) -> tuple[Tensor, list[KeyValue]]:
        """Stream (B, S, d) with visibility (B, S) -> normed hidden (B, S, d) + per-layer keys/values."""
        length = x.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool, device=x.device).tril()
        mask = causal[None, None] & visible[:, None, None, :]  # (B, 1, S, S)
        key_values = []
        for block in self.blocks:
            x, own = block(x, mask=mask)
            key_values.append(own)
        return self.final_norm(x), key_values

    # -- scoring ------------------------------------------------------------------------------------
    def sequence_log_probs(self, sequences: Tensor) -> Tensor:
        """Left-padded sequences (B, T) -> (B, T, L, V): row t scores item t given items < t, in one pass.

        At most ``max_history + 1`` items per row (window longer sequences before calling). Row t of a
        PAD column is a finite filler and must be masked by the caller.
        """
        full_width = sequences.shape[1]
        kept = self._window(sequences)
        batch, length = kept.shape
        per_item, _, _ = self._window_pass(kept)
        log_probs = self.heads.all_levels_log_probs(per_item)  # (B, T, L, V)
        uniform = masked_log_softmax(log_probs.new_zeros(self.n_levels, self.max_vocab), self.vocab_mask)
        padding = uniform.expand(batch, full_width - length, -1, -1)  # dropped PAD columns: finite filler
        return torch.cat([padding, log_probs], dim=1)

    def sequence_nll(self, sequences: Tensor, loss_mask: Tensor) -> Tensor:
        """Windows (B, T), T <= ``max_history + 1``, and their loss mask -> the NLL of each position's SID
        (B, T), 0 where the mask is False (:meth:`GenerativeRecommender.sequence_nll`)."""
        if sequences.shape[1] > self.config.max_history + 1:
            raise ValueError(
                f"windows hold at most max_history + 1 = {self.config.max_history + 1} items, "
                f"got {sequences.shape[1]} columns"
            )
        per_item, _, _ = self._window_pass(sequences)
        nll = self.heads.sid_nll(per_item, self.codes[sequences.clamp_min(0)])
        return nll.masked_fill(~loss_mask, 0.0)

    def scored_positions(
        self, sequences: Tensor, rows: Tensor, columns: Tensor, also: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, HistoryCache, Tensor | None]:
        """One pass over windows, three results for N chosen real items at (``rows``, ``columns``) (N,):

        - their teacher-forced log-probs (N, L, V) given the items before them (as
          :meth:`sequence_log_probs`), and
        - the :class:`HistoryCache` of each of those histories, sliced from the same pass (a causal
          pass's keys/values at a position depend on earlier positions only), ready for
          :meth:`prefix_log_probs` of other candidate items after the same history;
        - given ``also`` (rows, columns) of M more real items, their log-probs (M, L, V) from the same
          pass (no cache for them); None without ``also``.
        """
        kept = self._window(sequences)
        columns = columns - (sequences.shape[1] - kept.shape[1])
        per_item, key_values, visible = self._window_pass(kept)
        chosen = per_item[rows, columns]  # (N, L, d)
        past = visible.shape[1]
        before = torch.arange(past, device=visible.device)[None] < (1 + columns * self.n_levels)[:, None]
        cache = HistoryCache(
            key_values=[KeyValue(kv.key[rows], kv.value[rows]) for kv in key_values],
            visible=visible[rows] & before,
            next_position=item_positions(kept)[rows, columns],
            last_hidden=chosen[:, 0],
        )
        more = None
        if also is not None:
            shift = sequences.shape[1] - kept.shape[1]
            more = self.heads.all_levels_log_probs(per_item[also[0], also[1] - shift])
        return self.heads.all_levels_log_probs(chosen), cache, more

    def _window(self, sequences: Tensor) -> Tensor:
        """The real columns of windows (B, T) holding at most ``max_history + 1`` items each."""
        kept = recent_history(sequences, self.config.max_history + 1)
        if bool((sequences[:, : sequences.shape[1] - kept.shape[1]] != PAD_ITEM).any()):
            raise ValueError(
                f"sequences hold more than max_history + 1 = {self.config.max_history + 1} items: "
                "cut them into windows first"
            )
        return kept

    def _window_pass(self, sequences: Tensor) -> tuple[Tensor, list[KeyValue], Tensor]:
        """Windows (B, T) -> the hidden state that predicts each item's level-l token (B, T, L, d), every
        layer's keys/values and the visibility (B, T * L) of the stream without its last token."""
        batch, length = sequences.shape
        x, visible = self._stream(sequences)
        hidden, key_values = self._run(x[:, :-1], visible[:, :-1])  # (B, T * L, d): position j predicts j + 1
        per_item = hidden.reshape(batch, length, self.n_levels, -1)
        first_real = (item_positions(sequences) == 0) & (sequences != PAD_ITEM)  # (B, T)
        level0 = torch.where(first_real[..., None], hidden[:, :1], per_item[:, :, 0])  # BOS for first item
        per_item = torch.cat([level0[:, :, None], per_item[:, :, 1:]], dim=2)
        return per_item, key_values, visible[:, :-1]

    def next_item_log_probs(self, histories: Tensor, next_items: Tensor) -> Tensor:
        """Fused teacher forcing: histories (B, T), next_items (B,) -> (B, L, V) in one pass."""
        histories = recent_history(histories, self.config.max_history)
        return self.sequence_log_probs(torch.cat([histories, next_items[:, None]], dim=1))[:, -1]

    def encode_history(self, histories: Tensor) -> HistoryCache:
        """Histories (B, T) left-padded with PAD_ITEM -> :class:`HistoryCache`."""
        histories = recent_history(histories, self.config.max_history)
        x, visible = self._stream(histories)
        hidden, key_values = self._run(x, visible)
        next_position = (histories != PAD_ITEM).sum(dim=1)  # (B,)
        last_hidden = torch.where((next_position > 0)[:, None], hidden[:, -1], hidden[:, 0])
        return HistoryCache(key_values, visible, next_position, last_hidden)

    def user_representation(self, histories: Tensor) -> Tensor:
        """Histories (B, T) -> (B, d): the normed hidden state after the last history token."""
        return self.encode_history(histories).last_hidden

    def prefix_log_probs(self, cache: HistoryCache, prefix_embeddings: Tensor) -> Tensor:
        """Prefixes (B, W, l, d) -> log-probs (B, W, V) of the level-l token (history never re-run)."""
        batch, width, level, d = prefix_embeddings.shape
        if level >= self.n_levels:
            raise ValueError(f"a prefix has at most {self.n_levels - 1} tokens, got {level}")
        if level == 0:
            return self.heads.level_log_probs(cache.last_hidden, 0)[:, None].repeat(1, width, 1)
        hidden = self._prefix_hidden(cache, prefix_embeddings)[:, :, -1]  # (B, W, d)
        return self.heads.level_log_probs(hidden, level)

    def candidate_level_log_probs(self, cache: HistoryCache, candidate_embeddings: Tensor) -> Tensor:
        """Every level of W whole candidates from one pass of their first L - 1 tokens (a prefix token's
        hidden state depends on its own candidate's earlier tokens only): (B, W, L, d) -> (B, W, L, V)."""
        batch, width = candidate_embeddings.shape[:2]
        first = cache.last_hidden[:, None, None, :].expand(batch, width, 1, -1)  # predicts level 0
        hidden = self._prefix_hidden(cache, candidate_embeddings[:, :, :-1])  # (B, W, L - 1, d)
        return self.heads.all_levels_log_probs(torch.cat([first, hidden], dim=2))

    def _prefix_hidden(self, cache: HistoryCache, prefix_embeddings: Tensor) -> Tensor:
        """Prefixes (B, W, l, d), l >= 1, after the cached histories -> normed hidden states (B, W, l, d);
        row j predicts token j + 1 of its candidate."""
        batch, width, level, d = prefix_embeddings.shape
        x = prefix_embeddings + self.level_embedding.weight[:level]
        x = x + self.item_position(cache.next_position)[:, None, None, :]
        x = self.embedding_dropout(x.reshape(batch, width * level, d))
        mask = self._prefix_mask(cache.visible, width, level)
        for block, past in zip(self.blocks, cache.key_values, strict=True):
            x, _ = block(x, mask=mask, past=past)
        return self.final_norm(x).reshape(batch, width, level, d)

    @staticmethod
    def _prefix_mask(visible: Tensor, width: int, level: int) -> Tensor:
        """bool (B, 1, W * l, S + W * l): every prefix token sees the visible history and, among the
        prefix tokens, only its own candidate's tokens up to itself."""
        device = visible.device
        candidate = torch.arange(width * level, device=device) // level
        step = torch.arange(width * level, device=device) % level
        own = (candidate[:, None] == candidate[None, :]) & (step[None, :] <= step[:, None])  # (P, P)
        batch, prefix_tokens = visible.shape[0], width * level
        history = visible[:, None, None, :].expand(batch, 1, prefix_tokens, -1)
        return torch.cat([history, own[None, None].expand(batch, 1, -1, -1)], dim=-1)
