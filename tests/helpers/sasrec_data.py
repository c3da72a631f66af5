"""A learnable sequence dataset and small settings for the SASRec tests."""

from __future__ import annotations

import numpy as np

from tracer.data.sequences import SequenceData
from tracer.training.sasrec_train import (
    SASRecSettings,
)


def cyclic_data(n_users: int = 48, n_items: int = 30, length: int = 14, seed: int = 0) -> SequenceData:
    """next = f(previous) with f made of 5-cycles: every target has been seen in the history before."""
    rng = np.random.default_rng(seed)
    cycles = rng.permutation(n_items).reshape(-1, 5)
    successor = np.empty(n_items, dtype=np.int64)
    for cycle in cycles:
        successor[cycle] = np.roll(cycle, -1)
    sequences = []
    for _ in range(n_users):
        seq = [int(rng.integers(n_items))]
        for _ in range(length - 1):
            seq.append(int(successor[seq[-1]]))
        sequences.append(np.array(seq, dtype=np.int64))
    return SequenceData(
        user_ids=np.array([f"u{u}" for u in range(n_users)]),
        item_ids=np.array([f"i{i}" for i in range(n_items)]),
        train_sequences=[seq[:-2] for seq in sequences],
        valid_targets=np.array([seq[-2] for seq in sequences]),
        test_targets=np.array([seq[-1] for seq in sequences]),
    )


def tiny_settings(**train) -> SASRecSettings:
    return SASRecSettings.from_dict(
        {
            "model": {"hidden_size": 32, "n_heads": 2, "n_layers": 1, "dropout": 0.1, "max_len": 8},
            "train": {
                "lr": 5e-3,
                "batch_size": 16,
                "max_epochs": 40,
                "patience": 4,
                "min_epochs": 1,
                **train,
            },
        }
    )
