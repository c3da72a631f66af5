"""Tabular loader on the CSV and Parquet fixtures (tests/fixtures/tabular, made by make_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tracer.data.tabular import TabularColumns, load_tabular
from tracer.errors import UserError

FIXTURES = Path(__file__).parent / "fixtures" / "tabular"
COLUMNS = TabularColumns.from_yaml(FIXTURES / "columns.yaml")
CSV = (FIXTURES / "interactions.csv", FIXTURES / "items.csv")
PARQUET = (FIXTURES / "interactions.parquet", FIXTURES / "items.parquet")
EPOCH_2021 = 1_609_459_200  # 2021-01-01T00:00:00Z


def _item(raw, item_id: str) -> pd.Series:
    rows = raw.items[raw.items["item_id"] == item_id]
    assert len(rows) == 1
    return rows.iloc[0]


def _simple(tmp_path: Path, interactions: str, items: str = "item_id,title\na,A\nb,B\n", suffix=".csv"):
    """Write two small tables (default column names) and return their paths."""
    (tmp_path / f"inter{suffix}").write_text(interactions)
    (tmp_path / f"items{suffix}").write_text(items)
    return tmp_path / f"inter{suffix}", tmp_path / f"items{suffix}"


@pytest.fixture(scope="module", params=["csv", "parquet"])
def loaded(request):
    return load_tabular(*(CSV if request.param == "csv" else PARQUET), COLUMNS)


def test_yaml_settings_are_read_and_item_id_defaults_to_item(tmp_path):
    assert COLUMNS.user == "uid" and COLUMNS.item_id == "movie_id"
    assert COLUMNS.text_columns == ["plot", "studio"] and COLUMNS.concept_columns == ["genres", "studio"]
    (tmp_path / "c.yaml").write_text("item: movie\ntext_columns: plot\n")
    columns = TabularColumns.from_yaml(tmp_path / "c.yaml")
    assert columns.item_id is None and columns.text_columns == ["plot"]
    raw = load_tabular(
        *_simple(tmp_path, "user_id,movie,timestamp\nu,a,1\n", "movie,title,plot\na,A,Fun.\n"), columns
    )
    assert raw.items["item_id"].tolist() == ["a"] and raw.items["text"].tolist() == ["A. Fun."]


def test_interactions_are_the_file_rows_with_unknown_items_dropped(loaded):
    source = pd.read_parquet(PARQUET[0])
    known = source[source["movie"].isin(set(pd.read_parquet(PARQUET[1])["movie_id"]))]
    assert len(known) == len(source) - 1
    got = loaded.interactions
    assert got["user_id"].tolist() == known["uid"].astype(str).tolist()
    assert got["item_id"].tolist() == known["movie"].tolist()
    assert got["timestamp"].tolist() == known["watched_at"].tolist()
    assert got["rating"].tolist() == known["stars"].tolist()
    assert got["timestamp"].dtype == "int64"
    assert loaded.notes["rows_with_unknown_items_dropped"] == 1
    assert loaded.source == "tabular"


def test_csv_with_iso_datetimes_equals_parquet_with_epochs():
    from_csv, from_parquet = load_tabular(*CSV, COLUMNS), load_tabular(*PARQUET, COLUMNS)
    assert pd.read_csv(CSV[0])["watched_at"].iloc[0].endswith("Z")
    pd.testing.assert_frame_equal(from_csv.interactions, from_parquet.interactions)
    pd.testing.assert_frame_equal(from_csv.items, from_parquet.items)


def test_items_text_and_concepts(loaded):
    assert "m10" not in set(loaded.items["item_id"]) and loaded.notes["items_never_interacted_dropped"] == 1
    assert loaded.items["item_id"].is_unique
    space = _item(loaded, "m01")
    assert space["title"] == "Space Raiders"
    assert space["text"] == "Space Raiders. A crew fights pirates. Orbit."
    assert list(space["concepts"]) == ["Action", "Sci-Fi", "Orbit"]
    assert _item(loaded, "m05")["text"] == "Big Heist. Vault."


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_csv_delimiter_is_sniffed(delimiter, tmp_path):
    paths = []
    for source in CSV:
        target = tmp_path / source.name
        frame = pd.read_csv(source, dtype=str, keep_default_na=False)
        frame.to_csv(target, sep=delimiter, index=False)
        paths.append(target)
    raw = load_tabular(*paths, COLUMNS)
    reference = load_tabular(*CSV, COLUMNS)
    pd.testing.assert_frame_equal(raw.interactions, reference.interactions)
    pd.testing.assert_frame_equal(raw.items, reference.items)


def test_tsv_extension_and_given_delimiter(tmp_path):
    inter, items = _simple(
        tmp_path, "user_id\titem_id\ttimestamp\nu\ta\t5\n", "item_id\ttitle\na\tA\n", ".tsv"
    )
    assert load_tabular(inter, items, TabularColumns()).interactions["timestamp"].tolist() == [5]
    inter, items = _simple(tmp_path, "user_id:item_id:timestamp\nu:a:5\n", "item_id:title\na:A\n")
    raw = load_tabular(inter, items, TabularColumns(delimiter=":"))
    assert raw.interactions[["user_id", "item_id"]].values.tolist() == [["u", "a"]]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["2021-01-01T01:00:00+01:00", "2021-01-01 00:00:05"], [EPOCH_2021, EPOCH_2021 + 5]),
        (["2021-01-01T00:00:00Z", "2021-01-02"], [EPOCH_2021, EPOCH_2021 + 86400]),
        (["1609459200", " 7 "], [EPOCH_2021, 7]),
    ],
)
def test_timestamps_become_epoch_seconds(values, expected, tmp_path):
    rows = "".join(f"u,a,{value}\n" for value in values)
    raw = load_tabular(*_simple(tmp_path, "user_id,item_id,timestamp\n" + rows), TabularColumns())
    assert raw.interactions["timestamp"].tolist() == expected


def test_parquet_datetime_and_float_id_columns(tmp_path):
    inter = pd.DataFrame(
        {
            "user_id": [1.0, 2.0],
            "item_id": [10, 11],
            "timestamp": pd.to_datetime(["2021-01-01 00:00", "2021-01-01 00:01"]),
        }
    )
    inter.to_parquet(tmp_path / "inter.parquet")
    pd.DataFrame({"item_id": [10, 11], "title": ["A", None]}).to_parquet(tmp_path / "items.parquet")
    raw = load_tabular(tmp_path / "inter.parquet", tmp_path / "items.parquet", TabularColumns())
    assert raw.interactions["user_id"].tolist() == ["1", "2"]
    assert raw.interactions["timestamp"].tolist() == [EPOCH_2021, EPOCH_2021 + 60]
    assert raw.items["title"].tolist() == ["A", "11"]


def test_rows_with_empty_ids_are_dropped_and_counted(tmp_path):
    raw = load_tabular(*_simple(tmp_path, "user_id,item_id,timestamp\nu,a,1\n,b,2\nv,,3\n"), TabularColumns())
    assert raw.interactions["user_id"].tolist() == ["u"]
    assert raw.notes["rows_with_empty_ids_dropped"] == 2


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["1609459200", "soon"], r"timestamp column 'timestamp' of .* mixes integer epochs .* 'soon'"),
        (
            ["2021-01-01", "31/12/2020"],
            r"timestamp column 'timestamp' of .*not an integer epoch .* '31/12/2020'",
        ),
        (["1609459200.5"], r"timestamp column 'timestamp' .* '1609459200.5'"),
    ],
)
def test_bad_timestamps_name_the_column_and_a_value(values, message, tmp_path):
    rows = "".join(f"u,a,{value}\n" for value in values)
    with pytest.raises(UserError, match=message):
        load_tabular(*_simple(tmp_path, "user_id,item_id,timestamp\n" + rows), TabularColumns())


def test_non_numeric_rating_is_refused(tmp_path):
    inter_items = _simple(tmp_path, "user_id,item_id,timestamp,stars\nu,a,1,4\nu,b,2,great\n")
    with pytest.raises(UserError, match=r"rating column 'stars' of .* non-numeric value 'great'"):
        load_tabular(*inter_items, TabularColumns(rating="stars"))


def test_missing_columns_list_what_the_file_has_and_the_key_to_set(tmp_path):
    with pytest.raises(UserError) as error:
        load_tabular(*CSV, TabularColumns(user="user", timestamp="time"))
    message = str(error.value)
    assert "no column 'user' (YAML key 'user' or --user-col)" in message
    assert "no column 'time' (YAML key 'timestamp' or --time-col)" in message
    assert "its columns are 'uid', 'movie', 'watched_at', 'stars'" in message
    with pytest.raises(
        UserError, match=r"no column 'summary' \(YAML key 'text_columns\[1\]' or --text-cols\)"
    ):
        load_tabular(*PARQUET, TabularColumns(**{**vars(COLUMNS), "text_columns": ["plot", "summary"]}))
    with pytest.raises(UserError, match=r"one column only: set the YAML key 'delimiter'"):
        load_tabular(*_simple(tmp_path, "user_id item_id timestamp\nu a 1\n"), TabularColumns())


def test_missing_files_and_unknown_extensions_are_refused(tmp_path):
    with pytest.raises(UserError, match=r"interactions file .*nope\.csv not found"):
        load_tabular(tmp_path / "nope.csv", CSV[1], COLUMNS)
    (tmp_path / "inter.xlsx").write_text("x")
    with pytest.raises(UserError, match=r"unknown extension '\.xlsx': use one of \.csv, \.tsv, \.parquet"):
        load_tabular(tmp_path / "inter.xlsx", CSV[1], COLUMNS)
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(UserError, match=r"cannot read interactions file .*broken\.parquet"):
        load_tabular(tmp_path / "broken.parquet", CSV[1], COLUMNS)


@pytest.mark.parametrize("content", ["", "user_id,item_id,timestamp\n"])
def test_empty_tables_are_refused(content, tmp_path):
    with pytest.raises(UserError, match=r"interactions file .* has no rows"):
        load_tabular(*_simple(tmp_path, content), TabularColumns())
    with pytest.raises(UserError, match=r"items file .* has no rows"):
        load_tabular(
            *_simple(tmp_path, "user_id,item_id,timestamp\nu,a,1\n", "item_id,title\n"), TabularColumns()
        )


def test_duplicate_item_ids_are_named(tmp_path):
    items = "item_id,title\na,A\nb,B\na,A2\nc,C\nb,B2\n"
    with pytest.raises(UserError, match=r"lists 2 item ids more than once \(e\.g\. 'a', 'b'\)"):
        load_tabular(*_simple(tmp_path, "user_id,item_id,timestamp\nu,a,1\n", items), TabularColumns())


def test_interactions_with_no_known_item_are_refused(tmp_path):
    inter_items = _simple(tmp_path, "user_id,item_id,timestamp\nu,x,1\nu,y,2\n")
    with pytest.raises(UserError, match=r"no item of .* \(e\.g\. 'x'\) is in .* \(e\.g\. 'a'\)"):
        load_tabular(*inter_items, TabularColumns())


def test_bad_column_yaml_is_refused(tmp_path):
    with pytest.raises(UserError, match=r"columns file .* not found"):
        TabularColumns.from_yaml(tmp_path / "missing.yaml")
    cases = {
        "user: uid\nusr: x\n": r"c.yaml: unknown key\(s\) usr; valid keys: user, item, timestamp",
        "- user\n": r"must be a mapping",
        "user: [a\n": r"is not valid YAML",
        "concept_columns: {a: 1}\n": r"concept_columns must be a list",
        "user: ''\n": r"'user' must be a non-empty string",
    }
    for text, message in cases.items():
        (tmp_path / "c.yaml").write_text(text)
        with pytest.raises(UserError, match=message):
            TabularColumns.from_yaml(tmp_path / "c.yaml")
