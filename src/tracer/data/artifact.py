"""The normalised dataset artifact every loader writes and every later stage reads.

Layout of a prepared folder ``DIR``:

- ``items.parquet``: ``item_id`` (str), ``title`` (str), ``text`` (str, what the encoder embeds),
  ``concepts`` (list[str]); row order defines the item index used everywhere downstream.
- ``interactions.parquet``: ``user_id`` (str), ``item_id`` (str), ``timestamp`` (int64), ``split``
  (``train``/``valid``/``test``); every user's rows are contiguous and in chronological order
  (ties keep file order). The last row of a user is its test target, the one before its validation target.
- ``valid.parquet`` / ``test.parquet``: ``user_id``, ``item_id`` (the held-out target of each user).
- ``manifest.json``: ``n_users``, ``n_items``, ``n_interactions``, ``source``, ``sha256`` of inputs, ...

:func:`load_dataset` checks what later stages rely on: every file readable, the columns and their
types, unique item ids and users, and that every referenced item and user exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tracer.errors import UserError
from tracer.io import read_json_checked, read_table

ITEMS = "items.parquet"
INTERACTIONS = "interactions.parquet"
VALID = "valid.parquet"
TEST = "test.parquet"
MANIFEST = "manifest.json"
ITEM_COLUMNS = {"item_id": "string", "title": "string", "text": "string", "concepts": "list"}
TARGET_COLUMNS = {"user_id": "string", "item_id": "string"}
INTERACTION_COLUMNS = {**TARGET_COLUMNS, "timestamp": "integer", "split": "string"}


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
    fix = f"re-run `tracer prepare ... --out {root}`"
    dataset = Dataset(
        root=root,
        items=read_table(root / ITEMS, ITEM_COLUMNS, fix),
        interactions=read_table(root / INTERACTIONS, INTERACTION_COLUMNS, fix),
        valid=read_table(root / VALID, TARGET_COLUMNS, fix),
        test=read_table(root / TEST, TARGET_COLUMNS, fix),
        manifest=read_json_checked(root / MANIFEST, fix),
    )
    _check_references(dataset, fix)
    return dataset


def _check_references(dataset: Dataset, fix: str) -> None:
    """Unique item ids and users; every item and user referenced exists; splits named as expected."""
    root, items = dataset.root, dataset.items["item_id"]
    duplicated = items[items.duplicated()]
    if len(duplicated):
        raise UserError(f"{root / ITEMS} lists item {duplicated.iloc[0]!r} twice: {fix}")
    known = pd.Index(items)
    for name, frame in ((INTERACTIONS, dataset.interactions), (VALID, dataset.valid), (TEST, dataset.test)):
        unknown = frame["item_id"][~frame["item_id"].isin(known)]
        if len(unknown):
            raise UserError(f"{root / name} refers to item {unknown.iloc[0]!r}, which {ITEMS} lacks: {fix}")
    splits = set(dataset.interactions["split"].unique()) - {"train", "valid", "test"}
    if splits:
        raise UserError(f"{root / INTERACTIONS} has unknown split(s) {sorted(splits)}: {fix}")
    users = dataset.test["user_id"]
    for name, frame in ((TEST, dataset.test), (VALID, dataset.valid)):
        if frame["user_id"].duplicated().any():
            raise UserError(f"{root / name} lists a user twice: {fix}")
    if set(dataset.valid["user_id"]) != set(users) or not dataset.interactions["user_id"].isin(users).all():
        raise UserError(f"{root} has users in one of its tables but not in the others: {fix}")
