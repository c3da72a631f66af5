"""Training examples, their seeded epoch order, and the per-target loss of a batch.

Two kinds of rows, matching ``GenerativeRecommender.batch_kind``:

- ``target``: one row per training target (``SequenceData.training_targets()``): the history of its
  last ``max_history`` items and the target item.
- ``sequence``: windows of ``max_history + 1`` consecutive training items. A user's sequence of n items
  is cut from the end into windows that overlap by one item, so each target (position >= 1) is scored
  exactly once per epoch; the loss mask marks the scored positions.

Both kinds accept a ``target_mask`` (bool, aligned with ``training_targets()``) that keeps only some
targets (forget/retain sub-batches for unlearning). The loss of a target is the NLL of its full SID:
the sum over levels of the per-level cross-entropy.

The order of an epoch is a permutation drawn from ``torch.Generator().manual_seed(seed + epoch)``, so
a resumed run sees the same batches. With ``rows_per_epoch`` an epoch is the first that many rows of
its permutation: a fresh seeded draw each epoch, for backbones too costly to see every row each epoch
(``tiger`` on ML-1M on a CPU). With several processes every step's rows are split by rank.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

import numpy as np
import torch
from torch import Tensor

from tracer.data.sequences import SequenceData
from tracer.model.base import PAD_ITEM, GenerativeRecommender


class BatchKind(str, Enum):
    TARGET = "target"
    SEQUENCE = "sequence"


def _sid_nll(model: GenerativeRecommender, log_probs: Tensor, items: Tensor) -> Tensor:
    """log_probs (N, n_levels, max_vocab), items (N,) -> NLL of each item's full SID (N,) float32."""
    codes = model.codes[items]  # (N, n_levels)
    picked = log_probs.float().gather(-1, codes[..., None])[..., 0]  # (N, n_levels)
    return -picked.sum(dim=-1)


def to_device(tensor: Tensor, device: torch.device | str) -> Tensor:
    """A host tensor on ``device``. To a GPU it goes through pinned memory without blocking the host (the
    copy is ordered on the stream, so a step needs no host-device sync); the values are the same."""
    device = torch.device(device)
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


@dataclass
class TargetBatch:
    """``histories`` (B, max_history) int64 left-padded with PAD_ITEM; ``targets`` (B,) int64."""

    histories: Tensor
    targets: Tensor

    @property
    def n_targets(self) -> int:
        return int(self.targets.shape[0])

    def to(self, device: torch.device | str) -> TargetBatch:
        return TargetBatch(to_device(self.histories, device), to_device(self.targets, device))

    def target_nll(self, model: GenerativeRecommender) -> Tensor:
        """NLL of every target's SID, (B,)."""
        return _sid_nll(model, model.next_item_log_probs(self.histories, self.targets), self.targets)

    def fused_nll(self, model: GenerativeRecommender) -> Tensor:
        """:meth:`target_nll` by the fused cross-entropy (``GenerativeRecommender.next_item_nll``), (B,)."""
        return model.next_item_nll(self.histories, self.targets)


@dataclass
class SequenceBatch:
    """``sequences`` (B, max_history + 1) int64 left-padded; ``loss_mask`` (B, max_history + 1) bool."""

    sequences: Tensor
    loss_mask: Tensor

    @property
    def n_targets(self) -> int:
        return int(self.loss_mask.sum())

    def to(self, device: torch.device | str) -> SequenceBatch:
        return SequenceBatch(to_device(self.sequences, device), to_device(self.loss_mask, device))

    def target_nll(self, model: GenerativeRecommender) -> Tensor:
        """NLL of every scored position's SID, (n_targets,) in row-major order of the mask."""
        log_probs = model.sequence_log_probs(self.sequences)  # (B, T, n_levels, max_vocab)
        return _sid_nll(model, log_probs[self.loss_mask], self.sequences[self.loss_mask])

    def fused_nll(self, model: GenerativeRecommender) -> Tensor:
        """The NLL of every position's SID by the fused cross-entropy (``model.sequence_nll``), (B,
        max_history + 1) with 0 where the loss mask is False: its sum is that of :meth:`target_nll`."""
        return model.sequence_nll(self.sequences, self.loss_mask)


Batch = TargetBatch | SequenceBatch


@dataclass
class Step:
    """One optimiser step's share for this process, and the number of targets over all processes."""

    batch: Batch
    global_targets: int


class TrainingExamples:
    """The rows of one epoch for a backbone's batch kind (module docstring)."""

    def __init__(
        self,
        data: SequenceData,
        kind: BatchKind | str,
        max_history: int,
        target_mask: np.ndarray | None = None,
        rows_per_epoch: int | None = None,
    ) -> None:
        if max_history < 1:
            raise ValueError(f"max_history must be >= 1, got {max_history}")
        if rows_per_epoch is not None and rows_per_epoch < 1:
            raise ValueError(f"rows_per_epoch must be None or >= 1, got {rows_per_epoch}")
        self.kind = BatchKind(kind)
        self.rows_per_epoch = rows_per_epoch
        self.max_history = max_history
        lengths = np.array([len(seq) for seq in data.train_sequences], dtype=np.int64)
        self._flat = (
            np.concatenate(data.train_sequences).astype(np.int64) if lengths.sum() else np.zeros(0, np.int64)
        )
        self._user_start = np.cumsum(lengths) - lengths  # (n_users,) offset of each user in _flat
        users, positions = data.training_targets()
        if target_mask is None:
            target_mask = np.ones(len(users), dtype=bool)
        target_mask = np.asarray(target_mask, dtype=bool)
        if target_mask.shape != users.shape:
            raise ValueError(f"target_mask must have shape {users.shape}, got {target_mask.shape}")
        # _is_target[j]: flat element j is a kept training target
        self._is_target = np.zeros(len(self._flat), dtype=bool)
        self._is_target[self._user_start[users[target_mask]] + positions[target_mask]] = True
        if self.kind is BatchKind.TARGET:
            self._row_end = np.flatnonzero(self._is_target)  # flat index of each row's target
            self._row_user_start = np.repeat(self._user_start, lengths)[self._row_end]
            self._row_targets = np.ones(len(self._row_end), dtype=np.int64)
        else:
            self._build_windows(lengths)

    def _build_windows(self, lengths: np.ndarray) -> None:
        """Window w of a user ends (exclusive) at n - w * max_history; keep windows with a kept target."""
        width = self.max_history
        counts = np.maximum(lengths - 1 + width - 1, 0) // width  # ceil((n - 1) / width)
        users = np.repeat(np.arange(len(lengths)), counts)
        index_in_user = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        ends = self._user_start[users] + lengths[users] - index_in_user * width
        starts = self._user_start[users]
        _, mask = self._windows(ends, starts)
        targets = mask.sum(axis=1)
        keep = targets > 0
        self._row_end, self._row_user_start, self._row_targets = ends[keep], starts[keep], targets[keep]

    def _windows(self, ends: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat end/user-start indices (R,) -> items (R, max_history + 1) and loss mask (same shape)."""
        columns = np.arange(self.max_history + 1)
        index = ends[:, None] - (self.max_history + 1) + columns[None, :]
        valid = index >= starts[:, None]
        safe = np.clip(index, 0, max(len(self._flat) - 1, 0))
        items = np.where(valid, self._flat[safe], PAD_ITEM)
        mask = valid & (columns[None, :] >= 1) & self._is_target[safe]
        return items, mask

    @property
    def n_rows(self) -> int:
        return len(self._row_end)

    @property
    def n_targets(self) -> int:
        return int(self._row_targets.sum())

    def batch(self, rows: np.ndarray) -> Batch:
        """The batch of the given row indices (R,)."""
        rows = np.asarray(rows, dtype=np.int64)
        ends, starts = self._row_end[rows], self._row_user_start[rows]
        if self.kind is BatchKind.SEQUENCE:
            items, mask = self._windows(ends, starts)
            return SequenceBatch(torch.from_numpy(items), torch.from_numpy(mask))
        columns = np.arange(self.max_history)
        index = ends[:, None] - self.max_history + columns[None, :]
        valid = index >= starts[:, None]
        histories = np.where(valid, self._flat[np.clip(index, 0, None)], PAD_ITEM)
        return TargetBatch(torch.from_numpy(histories), torch.from_numpy(self._flat[ends]))

    @property
    def epoch_rows(self) -> int:
        """Rows drawn per epoch: all of them, or ``rows_per_epoch`` if that is fewer."""
        return self.n_rows if self.rows_per_epoch is None else min(self.n_rows, self.rows_per_epoch)

    def epoch_order(self, seed: int, epoch: int) -> np.ndarray:
        """The rows of ``epoch`` in order (epoch_rows,): the start of a seeded permutation of all rows."""
        generator = torch.Generator().manual_seed(seed + epoch)
        return torch.randperm(self.n_rows, generator=generator).numpy()[: self.epoch_rows]

    def steps_per_epoch(self, batch_size: int, world_size: int = 1) -> int:
        full, tail = divmod(self.epoch_rows, batch_size)
        return full + (tail >= world_size)

    def epoch_steps(
        self, batch_size: int, seed: int, epoch: int, rank: int = 0, world_size: int = 1
    ) -> Iterator[Step]:
        """The steps of one epoch; each global batch of ``batch_size`` rows is split by rank (row
        r, r + world_size, ...), dropping the last < world_size rows of the final batch."""
        order = self.epoch_order(seed, epoch)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            rows = rows[: len(rows) - len(rows) % world_size]
            if len(rows) == 0:
                continue
            yield Step(self.batch(rows[rank::world_size]), int(self._row_targets[rows].sum()))
