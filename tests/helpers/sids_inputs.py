"""A prepared dataset of 40 items with precomputed item vectors, for the `tracer sids` tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tracer.io import write_json, write_parquet

N_ITEMS = 40


def write_sids_inputs(tmp_path: Path) -> tuple[Path, Path]:
    """A prepared-dataset folder: 40 items (every 4th is Horror), 5 users, plus item vectors; returns
    (data folder, vectors file)."""
    folder = tmp_path / "data"
    ids = [f"m{i}" for i in range(N_ITEMS)]
    genres = [["Horror"] if i % 4 == 0 else ["Comedy", "Drama"] for i in range(N_ITEMS)]
    items = pd.DataFrame(
        {
            "item_id": ids,
            "title": [f"Movie {i}" for i in range(N_ITEMS)],
            "text": [f"Movie {i}. {', '.join(g)}" for i, g in enumerate(genres)],
            "concepts": genres,
        }
    )
    rows = [(f"u{u}", ids[(u * 7 + t) % N_ITEMS], t) for u in range(5) for t in range(6)]
    interactions = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    interactions["split"] = (["train"] * 4 + ["valid", "test"]) * 5
    write_parquet(folder / "items.parquet", items)
    write_parquet(folder / "interactions.parquet", interactions)
    for split in ("valid", "test"):
        write_parquet(
            folder / f"{split}.parquet", interactions[interactions["split"] == split][["user_id", "item_id"]]
        )
    write_json(folder / "manifest.json", {"n_items": N_ITEMS, "n_users": 5, "source": "synthetic"})
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2, 8)) * 3
    vectors = centres[(np.arange(N_ITEMS) % 4 == 0).astype(int)] + rng.normal(size=(N_ITEMS, 8))
    np.save(tmp_path / "vectors.npy", vectors.astype(np.float32))
    return folder, tmp_path / "vectors.npy"
