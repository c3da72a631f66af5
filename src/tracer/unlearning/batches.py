"""Forget and retain batches (docs/method.md §3): examples drawn from D_f / D_r.

For target backbones (tiger) both are (history, next item) examples (:class:`TargetSampler`). For
sequence backbones (causal) the retain batch, and the forget batch when a method asks for it, are
windows of ``max_history + 1`` training items with every target of the set in them scored in one pass
(:class:`WindowSampler`, ``training.batches.SequenceBatch``): ~50 retain targets for the price of one
history, the way the model was trained.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tracer.data.sequences import SequenceData
from tracer.model.decoding import pad_histories
from tracer.training.batches import BatchKind, SequenceBatch, TargetBatch, TrainingExamples


@dataclass
class ForgetRetainBatch:
    forget: TargetBatch | SequenceBatch
    retain: TargetBatch | SequenceBatch


class TargetSampler:
    """Cycles through a subset of the training targets in seeded random order, ``batch_size`` at a time.

    ``target_mask``: bool (n_targets,) aligned with ``SequenceData.training_targets()``.
    """

    def __init__(
        self, sequences: SequenceData, target_mask: np.ndarray, batch_size: int, max_history: int, seed: int
    ) -> None:
        users, positions = sequences.training_targets()
        chosen = np.flatnonzero(target_mask)
        if len(chosen) == 0:
            raise ValueError("no training target in this set")
        self.users, self.positions = users[chosen], positions[chosen]
        self.sequences = sequences
        self.batch_size = min(batch_size, len(chosen))
        self.max_history = max_history
        self.generator = torch.Generator().manual_seed(seed)
        self._order = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.users)

    def rows(self, picked: np.ndarray) -> TargetBatch:
        """The examples at ``picked`` (indices into this sampler's targets)."""
        histories = [
            self.sequences.train_sequences[u][max(0, p - self.max_history) : p]
            for u, p in zip(self.users[picked], self.positions[picked])
        ]
        items = [
            self.sequences.train_sequences[u][p] for u, p in zip(self.users[picked], self.positions[picked])
        ]
        return TargetBatch(
            pad_histories(histories, self.max_history), torch.as_tensor(np.array(items), dtype=torch.long)
        )

    def sample(self) -> TargetBatch:
        if len(self._order) < self.batch_size:
            fresh = torch.randperm(len(self.users), generator=self.generator).numpy()
            self._order = np.concatenate([self._order, fresh])
        picked, self._order = self._order[: self.batch_size], self._order[self.batch_size :]
        return self.rows(picked)


class WindowSampler:
    """Cycles seeded windows of ``max_history + 1`` items holding at least one kept target,
    ``windows`` at a time; the loss mask marks the kept targets (``target_mask`` as in
    :class:`TargetSampler`)."""

    def __init__(
        self, sequences: SequenceData, target_mask: np.ndarray, windows: int, max_history: int, seed: int
    ) -> None:
        self.examples = TrainingExamples(sequences, BatchKind.SEQUENCE, max_history, target_mask)
        if self.examples.n_rows == 0:
            raise ValueError("no training target in this set")
        self.windows = min(windows, self.examples.n_rows)
        self.generator = torch.Generator().manual_seed(seed)
        self._order = np.zeros(0, dtype=np.int64)

    def sample(self) -> SequenceBatch:
        if len(self._order) < self.windows:
            fresh = torch.randperm(self.examples.n_rows, generator=self.generator).numpy()
            self._order = np.concatenate([self._order, fresh])
        picked, self._order = self._order[: self.windows], self._order[self.windows :]
        return self.examples.batch(picked)


def erasure_history(model, config) -> int:
    """History length of the erasure's batches: ``config.max_history``, cut to what the model takes."""
    return min(config.max_history, int(model.config_dict()["max_history"]))


def rows_sampler(
    sequences: SequenceData, mask: np.ndarray, batch_kind: BatchKind, rows: int, history: int, seed: int
) -> TargetSampler | WindowSampler:
    """Batches of ``rows`` windows (sequence backbone) or single (history, next item) examples whose
    scored targets are the training targets in ``mask`` (n_targets,), histories cut to ``history``."""
    if batch_kind == "sequence":
        return WindowSampler(sequences, mask, rows, history, seed)
    return TargetSampler(sequences, mask, rows, history, seed)


def forget_sampler(
    sequences: SequenceData, forget_mask: np.ndarray, batch_kind: BatchKind, config, history: int, seed: int
) -> TargetSampler | WindowSampler:
    """The erasure's forget batches: ``config.forget_windows`` windows on a sequence backbone when that
    is > 0, else ``config.batch_size`` single (history, next item) examples."""
    if batch_kind == "sequence" and config.forget_windows > 0:
        return WindowSampler(sequences, forget_mask, config.forget_windows, history, seed)
    return TargetSampler(sequences, forget_mask, config.batch_size, history, seed)


def retain_sampler(
    sequences: SequenceData, retain_mask: np.ndarray, batch_kind: BatchKind, config, history: int, seed: int
) -> TargetSampler | WindowSampler:
    """The erasure's retain batches: ``config.retain_windows`` windows on a sequence backbone, else
    ``config.batch_size`` single (history, next item) examples."""
    rows = config.retain_windows if batch_kind == "sequence" else config.batch_size
    return rows_sampler(sequences, retain_mask, batch_kind, rows, history, seed)
