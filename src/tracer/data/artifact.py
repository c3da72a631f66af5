"""The normalised dataset artifact every loader writes and every later stage reads.

Layout of a prepared folder ``DIR``:

- ``items.parquet``: ``item_id`` (str), ``title`` (str), ``text`` (str, what the encoder embeds),
  ``concepts`` (list[str]); row order defines the item index used everywhere downstream.
- ``interactions.parquet``: ``user_id`` (str), ``item_id`` (str), ``timestamp`` (int64), ``split``
  (``train``/``valid``/``test``); every user's rows are contiguous and in chronological order
  (ties keep file order). The last row of a user is its test target, the one before its validation target.
- ``valid.parquet`` / ``test.parquet``: ``user_id``, ``item_id`` (the held-out target of each user).
- ``manifest.json``: ``n_users``, ``n_items``, ``n_interactions``, ``source``, ``sha256`` of inputs, ...
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tracer.errors import UserError
from tracer.io import read_json

ITEMS = "items.parquet"
INTERACTIONS = "interactions.parquet"
VALID = "valid.parquet"
TEST = "test.parquet"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Dataset:
    """A prepared dataset loaded from its folder."""

    root: Path
    items: pd.DataFrame
    interactions: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    manifest: dict

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_users(self) -> int:
        return len(self.test)


def load_dataset(root: str | Path) -> Dataset:
    """Read a folder written by ``tracer prepare``; a clear error if it is not one."""
    root = Path(root)
    missing = [name for name in (ITEMS, INTERACTIONS, VALID, TEST, MANIFEST) if not (root / name).is_file()]
    if missing:
        raise UserError(
            f"{root} is not a prepared dataset (missing {', '.join(missing)}): "
            f"run `tracer prepare ... --out {root}`"
        )
    return Dataset(
        root=root,
        items=pd.read_parquet(root / ITEMS),
        interactions=pd.read_parquet(root / INTERACTIONS),
        valid=pd.read_parquet(root / VALID),
        test=pd.read_parquet(root / TEST),
        manifest=read_json(root / MANIFEST),
    )
