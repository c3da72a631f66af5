"""A tiny prepared dataset + SID table with a learnable pattern, for training/DDP/CLI tests.

Users walk the catalogue: after item j comes item j + 1 (mod n) with probability 0.8, else a random
item. So the next item is predictable and a model that learns lowers its loss and ranks targets well.
Items with an even index carry the concept ``even``, the others ``odd``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tracer.data.pipeline import PrepareConfig, write_prepared
from tracer.data.raw import RawData
from tracer.semantic_ids.sid_table import SidTable

N_ITEMS = 24
CODEBOOK = 5


def write_tiny_inputs(folder: Path, n_users: int = 40, length: int = 14, seed: int = 0) -> tuple[Path, Path]:
    """Write ``folder/data`` (prepared dataset) and ``folder/sids`` (SID table); return both paths."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(n_users):
        item = int(rng.integers(N_ITEMS))
        for step in range(length):
            rows.append((str(user + 1), f"i{item:02d}", step))
            item = (item + 1) % N_ITEMS if rng.random() < 0.8 else int(rng.integers(N_ITEMS))
    interactions = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).astype(
        {"timestamp": "int64"}
    )
    items = pd.DataFrame(
        {
            "item_id": [f"i{j:02d}" for j in range(N_ITEMS)],
            "title": [f"Item {j}" for j in range(N_ITEMS)],
            "text": [f"Item {j}" for j in range(N_ITEMS)],
            "concepts": [["even"] if j % 2 == 0 else ["odd"] for j in range(N_ITEMS)],
        }
    )
    data_dir, sids_dir = folder / "data", folder / "sids"
    write_prepared(RawData(interactions=interactions, items=items, source="tiny"), PrepareConfig(), data_dir)
    prepared_items = pd.read_parquet(data_dir / "items.parquet")["item_id"].to_numpy()
    index = np.array([int(item[1:]) for item in prepared_items])
    level_codes = np.stack([index // CODEBOOK, index % CODEBOOK], axis=1)
    SidTable.from_level_codes(prepared_items, level_codes, CODEBOOK).save(sids_dir)
    return data_dir, sids_dir
