"""Any interactions table + items table (CSV, TSV or Parquet) with user-named columns.

The column names come from :class:`TabularColumns` (or a YAML file with the same keys). Item text is
the title followed by the text columns' values, joined with ``". "``; concepts are the values of the
concept columns, each cell holding one value or several split on ``concept_separator``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tracer.data.raw import RawData
from tracer.errors import UserError
from tracer.typed_config import load_config, read_yaml

TABLE_SUFFIXES = (".csv", ".tsv", ".parquet")
SNIFFED_DELIMITERS = (",", "\t", ";", "|")
SNIFF_BYTES = 1 << 16
EXAMPLES_SHOWN = 5
# `tracer prepare` flags that override a setting (named in error messages next to the YAML key).
SETTING_FLAGS = {
    "user": "--user-col",
    "item": "--item-col",
    "item_id": "--item-col",
    "timestamp": "--time-col",
    "title": "--title-col",
    "text_columns": "--text-cols",
    "concept_columns": "--concept-cols",
}


@dataclass
class TabularColumns:
    """Which column holds what. Keys of the columns YAML are these field names.

    ``item`` names the item column of the interactions table, ``item_id`` that of the items table
    (default: the same name as ``item``). ``delimiter`` applies to CSV files (default: sniffed).
    """

    user: str = "user_id"
    item: str = "item_id"
    timestamp: str = "timestamp"
    rating: str | None = None
    item_id: str | None = None
    title: str | None = "title"
    text_columns: list[str] = field(default_factory=list)
    concept_columns: list[str] = field(default_factory=list)
    concept_separator: str = "|"
    delimiter: str | None = None

    def __post_init__(self) -> None:
        for name in ("user", "item", "timestamp", "concept_separator"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise UserError(f"column setting '{name}' must be a non-empty string, got {value!r}")
        for name in ("item_id", "rating", "title", "delimiter"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise UserError(f"column setting '{name}' must be a string or null, got {value!r}")
        for name in ("text_columns", "concept_columns"):
            value = getattr(self, name)
            if value is None or isinstance(value, str):
                setattr(self, name, [] if value is None else [value])
            elif not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise UserError(f"column setting '{name}' must be a list of column names, got {value!r}")

    @classmethod
    def from_yaml(cls, path: str | Path) -> TabularColumns:
        """Read the column settings from a YAML mapping; unknown keys are an error."""
        return load_config(cls, read_yaml(path, "columns file") or {}, str(path))


def load_tabular(interactions_path: str | Path, items_path: str | Path, columns: TabularColumns) -> RawData:
    """Read an interactions table and an items table into :class:`RawData`.

    Interactions keep file order; rows with an empty user or item id are dropped, and so are rows whose
    item is not in the items table (both counted in ``notes``). Items nobody interacted with are dropped.
    """
    interactions_path, items_path = Path(interactions_path), Path(items_path)
    table = _read_table(interactions_path, columns.delimiter, "interactions")
    wanted = {"user": columns.user, "item": columns.item, "timestamp": columns.timestamp}
    if columns.rating is not None:
        wanted["rating"] = columns.rating
    _require_columns(table, interactions_path, wanted)
    interactions = _interactions(table, interactions_path, columns)
    empty_ids = len(table) - len(interactions)

    item_table = _read_table(items_path, columns.delimiter, "items")
    item_id_column = columns.item_id or columns.item
    wanted = {"item_id": item_id_column}
    if columns.title is not None:
        wanted["title"] = columns.title
    wanted.update({f"text_columns[{i}]": c for i, c in enumerate(columns.text_columns)})
    wanted.update({f"concept_columns[{i}]": c for i, c in enumerate(columns.concept_columns)})
    _require_columns(item_table, items_path, wanted)
    items = _items(item_table, items_path, columns, item_id_column)

    known = interactions["item_id"].isin(set(items["item_id"]))
    if not known.any():
        raise UserError(
            f"no item of {interactions_path} (e.g. {interactions['item_id'].iloc[0]!r}) is in {items_path} "
            f"(e.g. {items['item_id'].iloc[0]!r}): check the 'item' and 'item_id' column settings"
        )
    interactions = interactions[known].reset_index(drop=True)
    used = items["item_id"].isin(set(interactions["item_id"]))
    items = items[used].reset_index(drop=True)
    notes = {
        "interaction_rows": len(table),
        "rows_with_empty_ids_dropped": empty_ids,
        "rows_with_unknown_items_dropped": int((~known).sum()),
        "item_rows": len(item_table),
        "items_never_interacted_dropped": int((~used).sum()),
        "columns": asdict(columns),
    }
    return RawData(
        interactions=interactions,
        items=items,
        source="tabular",
        sources=[interactions_path, items_path],
        notes=notes,
    )


def _interactions(table: pd.DataFrame, path: Path, columns: TabularColumns) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "user_id": _id_strings(table[columns.user]),
            "item_id": _id_strings(table[columns.item]),
            "timestamp": _epoch_seconds(table[columns.timestamp], columns.timestamp, path),
        }
    )
    if columns.rating is not None:
        frame["rating"] = _numbers(table[columns.rating], columns.rating, path)
    has_ids = (frame["user_id"] != "") & (frame["item_id"] != "")
    if not has_ids.any():
        raise UserError(f"every row of {path} has an empty user or item id: check the user and item columns")
    return frame[has_ids].reset_index(drop=True)


def _items(table: pd.DataFrame, path: Path, columns: TabularColumns, id_column: str) -> pd.DataFrame:
    item_ids = _id_strings(table[id_column])
    if (item_ids == "").any():
        raise UserError(f"{path} has rows with an empty '{id_column}': give every item an id")
    duplicated = item_ids[item_ids.duplicated()].unique()
    if len(duplicated):
        shown = ", ".join(repr(v) for v in duplicated[:EXAMPLES_SHOWN])
        raise UserError(
            f"{path} lists {len(duplicated)} item ids more than once (e.g. {shown}): keep one row per item"
        )
    titles = item_ids if columns.title is None else _texts(table[columns.title])
    titles = titles.where(titles != "", item_ids)
    text_values = [_texts(table[name]) for name in columns.text_columns if name != columns.title]
    texts = [_join_sentences([title, *values]) for title, *values in zip(titles, *text_values, strict=True)]
    concepts: list[list[str]] = [[] for _ in range(len(table))]
    if columns.concept_columns:
        concept_cells = zip(*(table[name].tolist() for name in columns.concept_columns), strict=True)
        concepts = [_concepts(cells, columns.concept_separator) for cells in concept_cells]
    return pd.DataFrame(
        {
            "item_id": pd.Series(item_ids.to_numpy(), dtype=str),
            "title": pd.Series(titles.to_numpy(), dtype=str),
            "text": pd.Series(texts, dtype=str),
            "concepts": pd.Series(concepts, dtype=object),
        }
    )


def _join_sentences(parts: list[str]) -> str:
    kept = [part for part in parts if part]
    return " ".join(part if part.endswith((".", "!", "?")) else f"{part}." for part in kept)


def _concepts(cells: tuple, separator: str) -> list[str]:
    """Concept names of one item from its concept-column cells (a string, a list, or missing)."""
    values: list[str] = []
    for cell in cells:
        if isinstance(cell, (list, tuple, np.ndarray)):
            values.extend(str(v).strip() for v in cell if not _missing(v))
        elif not _missing(cell):
            values.extend(part.strip() for part in str(cell).split(separator))
    return list(dict.fromkeys(value for value in values if value))


def _missing(value: object) -> bool:
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def _id_strings(values: pd.Series) -> pd.Series:
    """Ids as stripped strings ('' where missing); whole-number floats (1.0, from nulls) become '1'."""
    if pd.api.types.is_float_dtype(values) and bool((values.dropna() % 1 == 0).all()):
        values = values.astype("Int64")
    return _strings(values).str.strip()


def _texts(values: pd.Series) -> pd.Series:
    """Free text with runs of whitespace collapsed ('' where missing)."""
    return _strings(values).str.replace(r"\s+", " ", regex=True).str.strip()


def _strings(values: pd.Series) -> pd.Series:
    values = values.astype(object)
    return values.where(values.notna(), "").astype(str)


def _epoch_seconds(values: pd.Series, column: str, path: Path) -> pd.Series:
    """Integer epochs as they are, ISO datetimes (or datetime columns) as UTC epoch seconds."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return _datetimes_to_seconds(values, values.astype(object), column, path)
    if pd.api.types.is_bool_dtype(values):
        _bad_timestamp(values.iloc[0], column, path)
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.astype("float64")
    else:
        texts = _texts(values)
        numbers = pd.to_numeric(texts, errors="coerce")
        if numbers.isna().any():
            if numbers.notna().any():
                _bad_timestamp(texts[numbers.isna()].iloc[0], column, path, mixed=True)
            parsed = pd.to_datetime(texts, format="ISO8601", utc=True, errors="coerce")
            return _datetimes_to_seconds(parsed, texts, column, path)
    bad = ~np.isfinite(numbers) | (numbers % 1 != 0)
    if bad.any():
        _bad_timestamp(values[bad].iloc[0], column, path)
    return numbers.astype("int64")


def _datetimes_to_seconds(parsed: pd.Series, originals: pd.Series, column: str, path: Path) -> pd.Series:
    if parsed.isna().any():
        _bad_timestamp(originals[parsed.isna()].iloc[0], column, path)
    if parsed.dt.tz is None:
        parsed = parsed.dt.tz_localize("UTC")
    return (parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)


def _bad_timestamp(example: object, column: str, path: Path, mixed: bool = False) -> None:
    problem = "mixes integer epochs and other values such as" if mixed else "has a value that is not"
    raise UserError(
        f"timestamp column '{column}' of {path} {problem} an integer epoch or ISO datetime: {example!r}: "
        "use integer epoch seconds or ISO 8601 datetimes (e.g. 2021-03-04T05:06:07)"
    )


def _numbers(values: pd.Series, column: str, path: Path) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    bad = numbers.isna() & ~values.map(lambda v: _missing(v) or v == "")
    if bad.any():
        raise UserError(f"rating column '{column}' of {path} has a non-numeric value {values[bad].iloc[0]!r}")
    return numbers


def _require_columns(table: pd.DataFrame, path: Path, wanted: dict[str, str]) -> None:
    """``wanted`` maps setting (YAML key) -> column name; name every missing one and what the file has."""
    missing = {key: name for key, name in wanted.items() if name not in table.columns}
    if not missing:
        return
    have = ", ".join(repr(str(c)) for c in table.columns)
    asks = "; ".join(f"no column {name!r} (YAML key '{key}'{_flag(key)})" for key, name in missing.items())
    hint = " (one column only: set the YAML key 'delimiter')" if len(table.columns) == 1 else ""
    raise UserError(f"{path} has {asks}; its columns are {have}{hint}: name existing columns with those keys")


def _flag(key: str) -> str:
    flag = SETTING_FLAGS.get(key.split("[")[0])
    return f" or {flag}" if flag else ""


def _read_table(path: Path, delimiter: str | None, role: str) -> pd.DataFrame:
    if not path.is_file():
        what = "is not a file" if path.exists() else "not found"
        raise UserError(f"{role} file {path} {what}: check the path")
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        known = ", ".join(TABLE_SUFFIXES)
        raise UserError(f"{role} file {path} has unknown extension {path.suffix!r}: use one of {known}")
    try:
        if suffix == ".parquet":
            table = pd.read_parquet(path)
        else:
            sep = delimiter or ("\t" if suffix == ".tsv" else _sniff_delimiter(path))
            table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8")
    except pd.errors.EmptyDataError:
        table = pd.DataFrame()
    except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError) as error:
        reason = " ".join(str(error).split())[:200]
        fix = f"check that it is a valid {suffix} file"
        raise UserError(f"cannot read {role} file {path} ({reason}): {fix}") from None
    if table.empty:
        raise UserError(f"{role} file {path} has no rows: pass a table with a header and at least one row")
    table.columns = [str(c).strip() for c in table.columns]
    return table


def _sniff_delimiter(path: Path) -> str:
    """The first of SNIFFED_DELIMITERS that splits the header and the first lines into equal field counts."""
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        sample = handle.read(SNIFF_BYTES)
    lines = sample.splitlines(keepends=True)
    if len(sample) == SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]
    for delimiter in SNIFFED_DELIMITERS:
        widths = {len(row) for row in csv.reader(io.StringIO("".join(lines)), delimiter=delimiter) if row}
        if len(widths) == 1 and widths.pop() > 1:
            return delimiter
    return ","
