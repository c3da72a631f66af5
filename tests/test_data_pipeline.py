"""The preparation pipeline: counts, ordering, splits, filtering, and every bad input."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.helpers.movielens_files import small_catalogue, write_atomic_dataset
from tracer.cli import main
from tracer.data.artifact import load_dataset
from tracer.data.pipeline import kcore_filter
from tracer.data.sequences import build_sequences


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_nothing_written(out: Path) -> None:
    assert not out.exists()
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    assert leftovers == []


def test_ml100k_from_installed_package(tmp_path, capsys):
    out = tmp_path / "ml100k"
    code, stdout, _ = run_cli(["prepare", "--dataset", "ml-100k", "--out", str(out)], capsys)
    assert code == 0
    manifest = load_dataset(out).manifest
    assert (manifest["n_users"], manifest["n_items"], manifest["n_interactions"]) == (943, 1682, 100_000)
    assert set(manifest["sha256"]) == {"ml-100k.inter", "ml-100k.item"}
    items = pd.read_parquet(out / "items.parquet")
    assert list(items.columns) == ["item_id", "title", "text", "concepts"]
    toy_story = items[items["item_id"] == "1"].iloc[0]
    assert list(toy_story["concepts"]) == ["Animation", "Children's", "Comedy"]
    assert "Toy Story" in toy_story["text"] and "Animation" in toy_story["text"]
    assert "943 users" in stdout


def test_ml1m_crlf_title_ids_and_float_years(tmp_path, capsys):
    interactions = [
        (f"1m_{u}", "Alien (1979)" if k % 2 else "Babe (1995)", str(100 + k))
        for u in (1, 2)
        for k in range(4)
    ]
    items = [
        ("Alien (1979)", "Alien", "1979.0", "Horror Sci-Fi"),
        ("Babe (1995)", "Babe", "1995", "Children's"),
    ]
    folder = write_atomic_dataset(
        tmp_path / "raw",
        interactions,
        items,
        name="ml-1m",
        item_header="item_id:token\tmovie_title:token\trelease_year:float\tgenre:token",
        line_end="\r\n",
    )
    out = tmp_path / "ml1m"
    assert (
        run_cli(["prepare", "--dataset", "ml-1m", "--path", str(folder), "--out", str(out)], capsys)[0] == 0
    )
    data = load_dataset(out)
    alien = data.items[data.items["item_id"] == "Alien (1979)"].iloc[0]
    assert list(alien["concepts"]) == ["Horror", "Sci-Fi"]
    assert alien["text"] == "Alien (1979). Genres: Horror, Sci-Fi."
    assert not any(str(v).endswith("\r") for v in data.interactions["user_id"])


def test_chronological_order_stable_ties_and_leave_one_out(tmp_path, capsys):
    # user 1: items 3 and 1 share a timestamp; file order (3 before 1) must be kept
    interactions = [
        ("1", "2", "50"),
        ("1", "3", "10"),
        ("1", "1", "10"),
        ("1", "4", "60"),
        ("1", "5", "70"),
        ("2", "1", "5"),
        ("2", "2", "6"),
        ("2", "3", "7"),
    ]
    folder = write_atomic_dataset(tmp_path / "raw", interactions, small_catalogue())
    out = tmp_path / "data"
    assert (
        run_cli(["prepare", "--dataset", "ml-100k", "--path", str(folder), "--out", str(out)], capsys)[0] == 0
    )
    data = load_dataset(out)
    user1 = data.interactions[data.interactions["user_id"] == "1"]
    assert user1["item_id"].tolist() == ["3", "1", "2", "4", "5"]
    assert user1["split"].tolist() == ["train", "train", "train", "valid", "test"]
    assert dict(zip(data.test["user_id"], data.test["item_id"])) == {"1": "5", "2": "3"}
    assert dict(zip(data.valid["user_id"], data.valid["item_id"])) == {"1": "4", "2": "2"}
    sequences = build_sequences(data)
    index = {item: i for i, item in enumerate(data.items["item_id"])}
    assert sequences.train_sequences[0].tolist() == [index["3"], index["1"], index["2"]]
    assert sequences.histories("test")[1].tolist() == [index["1"], index["2"]]
    users, positions = sequences.training_targets()
    assert list(zip(users.tolist(), positions.tolist())) == [(0, 1), (0, 2)]
    assert sequences.training_target_items().tolist() == [index["1"], index["2"]]


def test_short_users_dropped_and_counted(tmp_path, capsys):
    interactions = [("1", "1", "1"), ("1", "2", "2"), ("1", "3", "3"), ("2", "1", "1"), ("2", "2", "2")]
    folder = write_atomic_dataset(tmp_path / "raw", interactions, small_catalogue())
    out = tmp_path / "data"
    code, stdout, _ = run_cli(
        ["prepare", "--dataset", "ml-100k", "--path", str(folder), "--out", str(out)], capsys
    )
    assert code == 0
    manifest = load_dataset(out).manifest
    assert manifest["dropped_short_users"] == 1 and manifest["n_users"] == 1
    assert manifest["n_items"] == 3 and manifest["dropped_items_without_interactions"] == 3
    assert "dropped 1 users with fewer than 3 interactions" in stdout


def test_kcore_iterates_to_fixed_point():
    # one pass removes item c (1 interaction) -> user u2 drops to 1 interaction -> must go too
    frame = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "u2", "u3", "u3"],
            "item_id": ["a", "b", "a", "c", "a", "b"],
            "timestamp": range(6),
        }
    )
    kept = kcore_filter(frame, 2)
    assert sorted(kept["user_id"].unique()) == ["u1", "u3"]
    assert sorted(kept["item_id"].unique()) == ["a", "b"]
    assert (kept.groupby("user_id").size() >= 2).all() and (kept.groupby("item_id").size() >= 2).all()


BAD_INPUTS = {
    "missing_file": (None, "not found"),
    "missing_column": (
        "user_id:token\titem:token\trating:float\ttimestamp:float",
        "lacks column(s) ['item_id']",
    ),
    "empty_table": ("EMPTY", "interactions table is empty"),
    "duplicate_items": ("DUPLICATE", "duplicate item ids in the items table (2)"),
    "non_numeric_timestamp": ("BADTIME", "non-numeric timestamp 'yesterday'"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_inputs_fail_cleanly(case, tmp_path, capsys):
    header, expected = BAD_INPUTS[case]
    interactions = [("1", "1", "1"), ("1", "2", "2"), ("1", "3", "3")]
    catalogue = small_catalogue()
    kwargs = {}
    if case == "missing_column":
        kwargs["inter_header"] = header
    if case == "empty_table":
        interactions = []
    if case == "duplicate_items":
        catalogue = catalogue + [("2", "Again", "1990", "Drama")]
    if case == "non_numeric_timestamp":
        interactions = interactions + [("1", "4", "yesterday")]
    folder = tmp_path / "raw"
    if case == "missing_file":
        folder.mkdir()
    else:
        write_atomic_dataset(folder, interactions, catalogue, **kwargs)
    out = tmp_path / "data"
    code, _, err = run_cli(
        ["prepare", "--dataset", "ml-100k", "--path", str(folder), "--out", str(out)], capsys
    )
    assert code == 2
    assert expected in err and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert_nothing_written(out)


def test_existing_output_refused_and_kept(tmp_path, capsys):
    folder = write_atomic_dataset(
        tmp_path / "raw", [("1", "1", "1"), ("1", "2", "2"), ("1", "3", "3")], small_catalogue()
    )
    out = tmp_path / "data"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    code, _, err = run_cli(
        ["prepare", "--dataset", "ml-100k", "--path", str(folder), "--out", str(out)], capsys
    )
    assert code == 2 and "already exists" in err and "--overwrite" in err
    assert (out / "keep.txt").read_text() == "precious"


def test_failed_overwrite_keeps_previous_artifact(tmp_path, capsys):
    good = write_atomic_dataset(
        tmp_path / "good", [("1", "1", "1"), ("1", "2", "2"), ("1", "3", "3")], small_catalogue()
    )
    bad = write_atomic_dataset(tmp_path / "bad", [("1", "1", "x")], small_catalogue())
    out = tmp_path / "data"
    assert (
        run_cli(["prepare", "--dataset", "ml-100k", "--path", str(good), "--out", str(out)], capsys)[0] == 0
    )
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, _, _ = run_cli(
        ["prepare", "--dataset", "ml-100k", "--path", str(bad), "--out", str(out), "--overwrite"], capsys
    )
    assert code == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".data.")] == []


def test_unknown_dataset_and_missing_package_path(tmp_path, capsys):
    code, _, err = run_cli(["prepare", "--dataset", "netflix", "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "unknown dataset 'netflix'" in err
    code, _, err = run_cli(["prepare", "--dataset", "amazon", "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "amazon needs --path" in err
    assert_nothing_written(tmp_path / "x")
