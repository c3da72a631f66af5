"""Trie-constrained beam search and the exact catalogue scorer (docs/method.md §1.4).

Both score an item by the model's own sequence log-probability: the sum over levels of
log p(token_l | history, tokens_<l). There is no renormalisation over the tokens the trie allows, so the
beam's scores equal the exact scorer's for the same item, and ``exp`` of the exact scores sums to at
most 1 over the catalogue (to 1 when the trie holds every code combination the model can emit).

Callers put the model in eval mode (``model.eval()``) first: these functions never change the mode
(dropout left on would make decoding random). They run under ``torch.inference_mode()`` and in the
model's own precision (no autocast: ranking needs float32 log-probs; bf16 would create ties).
The model must already be on the device of the histories (``device`` in the user-level helpers).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from tracer.model.base import PAD_ITEM, GenerativeRecommender
from tracer.semantic_ids.trie import PrefixTrie


def next_token_log_probs(model: GenerativeRecommender, cache: Any, prefix_tokens: Tensor) -> Tensor:
    """float32 (B, W, max_vocab) log-probs of the token after hard prefixes (B, W, l), l >= 0.

    The empty prefix goes straight to ``prefix_log_probs`` with (B, W, 0, d_model) embeddings, since
    ``token_embeddings_from_codes`` cannot stack zero levels.
    """
    if prefix_tokens.shape[-1] == 0:
        weight = model.level_embeddings[0].weight
        empty = weight.new_zeros(*prefix_tokens.shape, model.d_model)
        return model.prefix_log_probs(cache, empty).float()
    return model.prefix_log_probs_from_tokens(cache, prefix_tokens).float()


def beam_search(
    model: GenerativeRecommender, trie: PrefixTrie, histories: Tensor, k: int, beam_width: int
) -> tuple[Tensor, Tensor]:
    """Top-k items of each history by trie-constrained beam search.

    histories (B, T) int64 left-padded with PAD_ITEM -> items (B, k) int64, scores (B, k) float32, each
    row sorted by descending log-probability. One model call per level on all (B, W, l) prefixes; the
    beam keeps the W best (prefix, trie node) pairs over W * max_vocab candidates. Rows hold -1 items
    with -inf scores only where the trie has fewer than k items.
    """
    if beam_width < k:
        raise ValueError(f"beam_width ({beam_width}) must be at least k ({k})")
    batch = histories.shape[0]
    device = histories.device
    max_vocab = trie.max_vocab
    with torch.inference_mode():
        cache = model.encode_history(histories)
        nodes = torch.full((batch, 1), trie.root, dtype=torch.long, device=device)  # (B, w)
        scores = torch.zeros(batch, 1, device=device)  # (B, w)
        prefixes = torch.zeros(batch, 1, 0, dtype=torch.long, device=device)  # (B, w, l)
        for _ in range(trie.n_levels):
            width = nodes.shape[1]
            log_probs = next_token_log_probs(model, cache, prefixes)  # (B, w, V)
            allowed = trie.allowed_mask(nodes.reshape(-1)).view(batch, width, max_vocab)
            candidates = (scores[..., None] + log_probs).masked_fill(~allowed, float("-inf"))
            scores, flat_index = candidates.view(batch, -1).topk(min(beam_width, width * max_vocab), dim=1)
            parent = flat_index // max_vocab  # (B, w')
            tokens = flat_index % max_vocab
            parent_nodes = nodes.gather(1, parent)
            # dead candidates (masked) get node -1 from step, so they never become items
            nodes = trie.step(parent_nodes.reshape(-1), tokens.reshape(-1)).view_as(tokens)
            tokens = tokens.masked_fill(nodes < 0, 0)  # a dead beam's token may lie beyond the vocab
            kept = prefixes.gather(1, parent[..., None].expand(-1, -1, prefixes.shape[2]))
            prefixes = torch.cat([kept, tokens[..., None]], dim=2)
        items = trie.leaf_item(nodes.reshape(-1)).view_as(nodes)[:, :k]
        scores = scores[:, :k].masked_fill(items < 0, float("-inf"))
        if items.shape[1] < k:  # a width * max_vocab smaller than k
            pad = k - items.shape[1]
            items = torch.cat([items, items.new_full((batch, pad), -1)], dim=1)
            scores = torch.cat([scores, scores.new_full((batch, pad), float("-inf"))], dim=1)
    return items, scores


def exact_scores(
    model: GenerativeRecommender, trie: PrefixTrie, histories: Tensor, prefix_chunk: int = 256
) -> Tensor:
    """log p(item | history) of every catalogue item, by teacher forcing over the trie.

    histories (B, T) -> (B, n_items) float32; items absent from the trie (a Filter trie) get -inf.
    Level l costs one model call per ``prefix_chunk`` distinct length-l prefixes, shared by every item
    under them; each child's score is its parent's plus the child token's log-prob.
    """
    batch = histories.shape[0]
    device = histories.device
    with torch.inference_mode():
        cache = model.encode_history(histories)
        prefix_scores = torch.zeros(batch, 1, device=device)  # (B, P_l): log p of each depth-l prefix
        for depth in range(trie.n_levels):
            first, stop = trie.nodes_at_depth(depth)
            child_first, child_stop = trie.nodes_at_depth(depth + 1)
            prefixes = trie.prefixes_at_depth(depth)  # (P_l, l)
            child_scores = torch.empty(batch, child_stop - child_first, device=device)
            for start in range(first, stop, prefix_chunk):
                end = min(start + prefix_chunk, stop)
                chunk = prefixes[start - first : end - first]  # (c, l)
                log_probs = next_token_log_probs(model, cache, chunk.expand(batch, -1, -1))
                children = torch.arange(
                    int(trie.child_start[start]), int(trie.child_end[end - 1]), device=device
                )  # the children of consecutive nodes are consecutive
                parent_in_chunk = trie.node_parent[children] - start
                token_log_probs = log_probs[:, parent_in_chunk, trie.node_token[children]]  # (B, n_children)
                parent_scores = prefix_scores[:, parent_in_chunk + (start - first)]
                child_scores[:, children - child_first] = parent_scores + token_log_probs
            prefix_scores = child_scores
        scores = torch.full((batch, trie.n_items), float("-inf"), device=device)
        scores[:, trie.leaf_items] = prefix_scores
    return scores


def pad_histories(histories: list[np.ndarray], max_history: int) -> Tensor:
    """Keep each history's most recent ``max_history`` items and left-pad with PAD_ITEM.

    -> (U, T) int64 with T = the longest kept history (at least 1).
    """
    if max_history < 1:
        raise ValueError(f"max_history must be positive, got {max_history}")
    kept = [np.asarray(history, dtype=np.int64)[-max_history:] for history in histories]
    width = max([len(history) for history in kept] + [1])
    padded = np.full((len(kept), width), PAD_ITEM, dtype=np.int64)
    for row, history in enumerate(kept):
        if len(history):
            padded[row, width - len(history) :] = history
    return torch.from_numpy(padded)


def recommend_top_k(
    model: GenerativeRecommender,
    trie: PrefixTrie,
    histories: list[np.ndarray],
    k: int,
    beam_width: int,
    batch_size: int,
    max_history: int,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Beam-search top-k of many users: -> items (U, k) int64, scores (U, k) float32 (numpy)."""
    trie = trie.to(device)
    items, scores = [], []
    for start in tqdm(range(0, len(histories), batch_size), desc="beam search", disable=not progress):
        batch = pad_histories(histories[start : start + batch_size], max_history).to(device)
        batch_items, batch_scores = beam_search(model, trie, batch, k, beam_width)
        items.append(batch_items.cpu().numpy())
        scores.append(batch_scores.cpu().numpy())
    return _concat(items, (0, k), np.int64), _concat(scores, (0, k), np.float32)


def exact_score_users(
    model: GenerativeRecommender,
    trie: PrefixTrie,
    histories: list[np.ndarray],
    batch_size: int,
    max_history: int,
    device: torch.device | str = "cpu",
    prefix_chunk: int = 256,
    progress: bool = True,
) -> np.ndarray:
    """Exact log p(item | history) of every item for many users: -> (U, n_items) float32 (numpy)."""
    trie = trie.to(device)
    rows = []
    for start in tqdm(range(0, len(histories), batch_size), desc="exact scores", disable=not progress):
        batch = pad_histories(histories[start : start + batch_size], max_history).to(device)
        rows.append(exact_scores(model, trie, batch, prefix_chunk).cpu().numpy())
    return _concat(rows, (0, trie.n_items), np.float32)


def _concat(parts: list[np.ndarray], empty_shape: tuple[int, int], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(empty_shape, dtype=dtype)
