"""Reader for RecBole-style "atomic files": tab-separated, a header of ``name:type`` columns."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from tracer.errors import UserError


def read_atomic_file(path: Path, required: list[str]) -> pd.DataFrame:
    """Read ``path`` as strings; strip ``:token``-style suffixes and CRLF line ends.

    Raises UserError when the file is missing or lacks a ``required`` column.
    """
    if not path.is_file():
        raise UserError(f"data file {path} not found: reinstall its package (see README, 'Datasets')")
    frame = pd.read_csv(
        path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE, lineterminator="\n"
    )
    frame.columns = [column.split(":")[0].strip() for column in frame.columns]
    frame = frame.apply(lambda column: column.str.rstrip("\r"))
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise UserError(f"{path} lacks column(s) {missing}; it has {list(frame.columns)}")
    return frame
