"""Per-user item-index sequences and leave-one-out targets (docs/method.md §2).

Items are indexed by their row in ``items.parquet``; users by their row in ``test.parquet``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

import numpy as np

from tracer.data.artifact import Dataset


class Split(str, Enum):
    VALID = "valid"
    TEST = "test"


@dataclass(frozen=True)
class SequenceData:
    """Chronological item-index sequences of every user.

    ``train_sequences[u]``: int64 array of user u's training items, oldest first.
    ``valid_targets`` / ``test_targets``: int64 arrays of shape (n_users,).
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    train_sequences: list[np.ndarray]
    valid_targets: np.ndarray
    test_targets: np.ndarray

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def histories(self, split: Split | str) -> list[np.ndarray]:
        """Input histories for evaluation: train items (valid) or train + valid item (test)."""
        split = Split(split)
        if split is Split.VALID:
            return list(self.train_sequences)
        return [np.append(seq, target) for seq, target in zip(self.train_sequences, self.valid_targets)]

    def targets(self, split: Split | str) -> np.ndarray:
        return self.valid_targets if Split(split) is Split.VALID else self.test_targets

    def training_targets(self) -> tuple[np.ndarray, np.ndarray]:
        """Every training target: (user index, position) with position >= 1 in the training sequence.

        The history of a target is ``train_sequences[user][:position]``; its item is
        ``train_sequences[user][position]``. Shapes: (n_targets,), (n_targets,).
        """
        lengths = np.array([len(seq) for seq in self.train_sequences], dtype=np.int64)
        counts = np.maximum(lengths - 1, 0)
        users = np.repeat(np.arange(self.n_users, dtype=np.int64), counts)
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        positions = np.arange(counts.sum(), dtype=np.int64) - starts + 1
        return users, positions

    def training_target_items(self) -> np.ndarray:
        """Item index of every training target, aligned with :meth:`training_targets`."""
        lengths = np.array([len(seq) for seq in self.train_sequences], dtype=np.int64)
        if lengths.sum() == 0:
            return np.zeros(0, dtype=np.int64)
        flat = np.concatenate(self.train_sequences).astype(np.int64)
        keep = np.ones(len(flat), dtype=bool)
        keep[(np.cumsum(lengths) - lengths)[lengths > 0]] = False
        return flat[keep]

    def without_targets(self, drop: np.ndarray) -> SequenceData:
        """These sequences with the training targets where ``drop`` (bool, aligned with
        :meth:`training_targets`) is True taken out of the training sequences, the rest in their order.
        A sequence's first item is no target, so it always stays; held-out targets are unchanged."""
        drop = np.asarray(drop, dtype=bool)
        users, positions = self.training_targets()
        if drop.shape != users.shape:
            raise ValueError(f"drop must be aligned with the {len(users)} training targets, got {drop.shape}")
        lengths = np.array([len(seq) for seq in self.train_sequences], dtype=np.int64)
        keep = np.ones(int(lengths.sum()), dtype=bool)
        keep[(np.cumsum(lengths) - lengths)[users[drop]] + positions[drop]] = False
        kept = np.split(keep, np.cumsum(lengths)[:-1])
        return replace(self, train_sequences=[seq[mask] for seq, mask in zip(self.train_sequences, kept)])


def build_sequences(dataset: Dataset) -> SequenceData:
    """Turn a prepared dataset into index sequences (vectorised; ML-1M takes about a second)."""
    item_ids = dataset.items["item_id"].to_numpy()
    item_index = {item: index for index, item in enumerate(item_ids)}
    user_ids = dataset.test["user_id"].to_numpy()
    user_index = {user: index for index, user in enumerate(user_ids)}

    frame = dataset.interactions
    train = frame[frame["split"] == "train"]
    user_codes = train["user_id"].map(user_index).to_numpy(dtype=np.int64)
    item_codes = train["item_id"].map(item_index).to_numpy(dtype=np.int64)
    order = np.argsort(user_codes, kind="stable")
    user_codes, item_codes = user_codes[order], item_codes[order]
    bounds = np.searchsorted(user_codes, np.arange(len(user_ids) + 1))
    train_sequences = [item_codes[bounds[u] : bounds[u + 1]] for u in range(len(user_ids))]

    def targets(table) -> np.ndarray:
        by_user = dict(zip(table["user_id"], table["item_id"]))
        return np.array([item_index[by_user[user]] for user in user_ids], dtype=np.int64)

    return SequenceData(
        user_ids=user_ids,
        item_ids=item_ids,
        train_sequences=train_sequences,
        valid_targets=targets(dataset.valid),
        test_targets=targets(dataset.test),
    )
