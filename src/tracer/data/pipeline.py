"""The shared preparation pipeline (docs/method.md §2): validate, filter, order, split, write."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import tracer
from tracer.data import artifact
from tracer.data.raw import RawData
from tracer.errors import UserError
from tracer.io import sha256_file, write_json, write_parquet
from tracer.outputs import claim_folder

MIN_USER_INTERACTIONS = 3  # train + valid + test


@dataclass(frozen=True)
class PrepareConfig:
    """``kcore``: minimum interactions per user and per item, iterated to a fixed point (None = off)."""

    kcore: int | None = None


@dataclass(frozen=True)
class Prepared:
    items: pd.DataFrame
    interactions: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    report: dict


def validate_raw(raw: RawData) -> None:
    """Clear errors for tables a loader could not have caught itself."""
    for name, frame, columns in (
        ("interactions", raw.interactions, ["user_id", "item_id", "timestamp"]),
        ("items", raw.items, ["item_id", "title", "text", "concepts"]),
    ):
        missing = [column for column in columns if column not in frame.columns]
        if missing:
            raise UserError(f"{name} table lacks column(s) {missing}; it has {list(frame.columns)}")
        if frame.empty:
            raise UserError(f"the {name} table is empty: check the input file")
    duplicated = raw.items["item_id"][raw.items["item_id"].duplicated()]
    if len(duplicated):
        examples = ", ".join(map(str, duplicated.unique()[:5]))
        raise UserError(f"duplicate item ids in the items table ({examples}): make item_id unique")
    if not pd.api.types.is_integer_dtype(raw.interactions["timestamp"]):
        raise UserError("timestamps must be integers (epoch seconds): convert the timestamp column")


def kcore_filter(interactions: pd.DataFrame, k: int) -> pd.DataFrame:
    """Keep users and items with >= k interactions, repeating until nothing changes."""
    frame = interactions
    while True:
        user_counts = frame["user_id"].map(frame["user_id"].value_counts())
        item_counts = frame["item_id"].map(frame["item_id"].value_counts())
        keep = (user_counts >= k) & (item_counts >= k)
        if keep.all():
            return frame
        frame = frame[keep]


def chronological(interactions: pd.DataFrame) -> pd.DataFrame:
    """Users in natural id order; each user's rows by timestamp, ties in file order."""
    frame = interactions.assign(_row=np.arange(len(interactions)))
    user_key = pd.to_numeric(frame["user_id"], errors="coerce")
    if user_key.isna().any():
        user_key = frame["user_id"].str.replace(r"\d+", lambda m: m.group().zfill(12), regex=True)
    frame = frame.assign(_user=user_key).sort_values(["_user", "timestamp", "_row"], kind="mergesort")
    return frame.drop(columns=["_user", "_row"]).reset_index(drop=True)


def leave_one_out(interactions: pd.DataFrame) -> pd.DataFrame:
    """Label each row ``train``/``valid``/``test``: a user's last row is test, the one before valid."""
    from_end = interactions.groupby("user_id", sort=False).cumcount(ascending=False).to_numpy()
    split = np.where(from_end == 0, "test", np.where(from_end == 1, "valid", "train"))
    return interactions.assign(split=split)


def prepare_tables(raw: RawData, config: PrepareConfig) -> Prepared:
    validate_raw(raw)
    frame = raw.interactions[["user_id", "item_id", "timestamp"]].astype({"user_id": str, "item_id": str})
    known = frame["item_id"].isin(raw.items["item_id"])
    unknown_items = int((~known).sum())
    if not known.any():
        raise UserError("no interaction refers to an item of the items table: check that the item ids match")
    frame = frame[known]
    if config.kcore:
        frame = kcore_filter(frame, config.kcore)
    counts = frame["user_id"].map(frame["user_id"].value_counts())
    short_users = int(frame["user_id"][counts < MIN_USER_INTERACTIONS].nunique())
    frame = frame[counts >= MIN_USER_INTERACTIONS]
    if frame.empty:
        raise UserError(f"no user has {MIN_USER_INTERACTIONS}+ interactions after filtering: lower --kcore")
    frame = leave_one_out(chronological(frame))

    used = raw.items["item_id"].isin(frame["item_id"])
    items = raw.items[used].reset_index(drop=True)[["item_id", "title", "text", "concepts"]]
    items = items.assign(concepts=[sorted(set(map(str, c))) for c in items["concepts"]])
    test = frame[frame["split"] == "test"][["user_id", "item_id"]].reset_index(drop=True)
    valid = frame[frame["split"] == "valid"][["user_id", "item_id"]].reset_index(drop=True)
    report = {
        "dropped_unknown_item_interactions": unknown_items,
        "dropped_short_users": short_users,
        "dropped_items_without_interactions": int((~used).sum()),
    }
    return Prepared(
        items=items, interactions=frame.reset_index(drop=True), valid=valid, test=test, report=report
    )


def write_prepared(raw: RawData, config: PrepareConfig, out: str | Path, overwrite: bool = False) -> dict:
    """Run the pipeline on ``raw`` and write the artifact folder ``out``; returns the manifest."""
    started = time.perf_counter()
    prepared = prepare_tables(raw, config)
    manifest = {
        "source": raw.source,
        "n_users": len(prepared.test),
        "n_items": len(prepared.items),
        "n_interactions": len(prepared.interactions),
        "n_train_interactions": int((prepared.interactions["split"] == "train").sum()),
        "kcore": config.kcore,
        "min_user_interactions": MIN_USER_INTERACTIONS,
        "sha256": {str(Path(p).name): sha256_file(p) for p in raw.sources},
        **prepared.report,
        "notes": raw.notes,
        "tracer_version": tracer.__version__,
        "seconds": round(time.perf_counter() - started, 3),
    }
    inputs = {f"input {Path(path).name}": Path(path) for path in raw.sources}
    with claim_folder(out, overwrite, inputs) as stage:
        write_parquet(stage / artifact.ITEMS, prepared.items)
        write_parquet(stage / artifact.INTERACTIONS, prepared.interactions)
        write_parquet(stage / artifact.VALID, prepared.valid)
        write_parquet(stage / artifact.TEST, prepared.test)
        write_json(stage / artifact.MANIFEST, manifest)
    return manifest
