"""Random SID tables and padded histories for the decoding tests."""

from __future__ import annotations

import torch
from torch import Tensor

from tracer.model.base import PAD_ITEM


def random_sid_table(n_items: int, level_vocab: list[int], seed: int) -> tuple[Tensor, list[int]]:
    """Random codes over small vocabularies plus a dedup digit per colliding group."""
    generator = torch.Generator().manual_seed(seed)
    base = torch.stack([torch.randint(0, v, (n_items,), generator=generator) for v in level_vocab], dim=1)
    seen: dict[tuple, int] = {}
    dedup = []
    for row in base.tolist():
        dedup.append(seen.get(tuple(row), 0))
        seen[tuple(row)] = dedup[-1] + 1
    return torch.cat([base, torch.tensor(dedup)[:, None]], dim=1), list(level_vocab) + [max(dedup) + 1]


def random_histories(n_users: int, length: int, n_items: int, seed: int) -> Tensor:
    """(n_users, length) random item indices, user u left-padded with u % length PAD_ITEMs."""
    generator = torch.Generator().manual_seed(seed)
    histories = torch.randint(0, n_items, (n_users, length), generator=generator)
    for user in range(n_users):
        histories[user, : user % length] = PAD_ITEM
    return histories
