"""What every loader returns before the shared pipeline (filtering, ordering, splitting, writing)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass
class RawData:
    """Loader output.

    ``interactions``: columns ``user_id`` (str), ``item_id`` (str), ``timestamp`` (int64) [, ``rating``],
    in file order (the pipeline sorts stably per user, so ties keep this order).
    ``items``: columns ``item_id`` (str, unique), ``title`` (str), ``text`` (str), ``concepts`` (list[str]).
    ``sources``: the input files, hashed into the manifest. ``source``: a short name ("ml-100k", ...).
    ``notes``: anything the loader wants recorded in the manifest (dropped rows, formats, ...).
    """

    interactions: pd.DataFrame
    items: pd.DataFrame
    source: str
    sources: list[Path] = field(default_factory=list)
    notes: dict = field(default_factory=dict)
