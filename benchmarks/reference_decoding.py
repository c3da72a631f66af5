"""Reference beam search: a plain per-user, per-beam Python loop over a dict-of-dicts trie.

It is deliberately simple (no batching, no tensors beyond the model's own calls) so that it can be read
at a glance; ``tracer.model.decoding.beam_search`` is tested and benchmarked against it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from tracer.model.base import GenerativeRecommender


def build_dict_trie(codes: Tensor, item_ids: list[int] | None = None) -> dict:
    """Nested dicts token -> subtree; at full depth the value is the item index."""
    rows = codes.tolist()
    item_ids = list(range(len(rows))) if item_ids is None else item_ids
    root: dict = {}
    for item, row in zip(item_ids, rows, strict=True):
        node = root
        for token in row[:-1]:
            node = node.setdefault(token, {})
        node[row[-1]] = item
    return root


def reference_beam_search(
    model: GenerativeRecommender, trie: dict, histories: Tensor, k: int, beam_width: int
) -> tuple[list[list[int]], list[list[float]]]:
    """Top-k (items, scores) of each history (B, T); same scoring and width rule as the fast search."""
    all_items, all_scores = [], []
    with torch.inference_mode():
        for history in histories:
            cache = model.encode_history(history[None])
            beams: list[tuple[list[int], float, dict | int]] = [([], 0.0, trie)]
            for _ in range(model.n_levels):
                candidates = []
                for prefix, score, node in beams:
                    log_probs = _next_token_log_probs(model, cache, prefix)
                    for token, child in node.items():
                        candidates.append((prefix + [token], score + log_probs[token], child))
                candidates.sort(key=lambda candidate: -candidate[1])
                beams = candidates[:beam_width]
            top = beams[:k]
            all_items.append([item for _, _, item in top] + [-1] * (k - len(top)))
            all_scores.append([score for _, score, _ in top] + [-math.inf] * (k - len(top)))
    return all_items, all_scores


def _next_token_log_probs(model: GenerativeRecommender, cache: object, prefix: list[int]) -> list[float]:
    """The model's next-token log-probs after one hard prefix (possibly empty), as a Python list."""
    device = model.codes.device
    if prefix:
        tokens = torch.tensor(prefix, dtype=torch.long, device=device).view(1, 1, len(prefix))
        embeddings = model.token_embeddings_from_codes(tokens)
    else:
        embeddings = torch.zeros(1, 1, 0, model.d_model, device=device)
    return model.prefix_log_probs(cache, embeddings)[0, 0].float().tolist()
