"""Amazon loader on the 2014 and 2018 fixtures (tests/fixtures/amazon, made by make_fixtures.py)."""

from __future__ import annotations

import ast
import gzip
import json
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tracer.data import amazon
from tracer.data.amazon import STOP_WORDS, load_amazon
from tracer.errors import UserError

FIXTURES = Path(__file__).parent / "fixtures" / "amazon"
FILES = {
    "2014": (FIXTURES / "2014" / "reviews_Toys_5.json.gz", FIXTURES / "2014" / "meta_Toys.json.gz"),
    "2018": (FIXTURES / "2018" / "Toys_5.json.gz", FIXTURES / "2018" / "meta_Toys.json.gz"),
}
FORMATS = sorted(FILES)


def _raw_lines(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip()]


def _write_lines(path: Path, lines: list[str]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in lines)
    return path


def _item(raw, asin: str) -> pd.Series:
    rows = raw.items[raw.items["item_id"] == asin]
    assert len(rows) == 1
    return rows.iloc[0]


@pytest.fixture(scope="module", params=FORMATS)
def loaded(request):
    return request.param, load_amazon(*FILES[request.param])


def test_interactions_are_the_review_lines_in_file_order_without_exact_duplicates(loaded):
    release, raw = loaded
    records = [json.loads(line) for line in _raw_lines(FILES[release][0])]
    expected = list(
        dict.fromkeys((r["reviewerID"], r["asin"], r["unixReviewTime"], r["overall"]) for r in records)
    )
    got = list(
        raw.interactions[["user_id", "item_id", "timestamp", "rating"]].itertuples(index=False, name=None)
    )
    assert got == expected
    assert raw.notes["duplicate_reviews_dropped"] == len(records) - len(expected)
    assert raw.interactions["timestamp"].dtype == "int64"
    assert raw.notes["format"] == release
    assert raw.source == "amazon-toys"
    assert raw.sources == list(FILES[release])


def test_2018_fixture_really_holds_a_duplicate_review():
    records = _raw_lines(FILES["2018"][0])
    assert len(set(records)) == len(records) - 1
    assert load_amazon(*FILES["2018"]).notes["duplicate_reviews_dropped"] == 1


def test_items_are_the_reviewed_asins_and_unknown_ones_keep_their_asin(loaded):
    _, raw = loaded
    assert raw.items["item_id"].tolist() == list(dict.fromkeys(raw.interactions["item_id"]))
    assert raw.items["item_id"].is_unique
    assert not {"B00TOY0098", "B00TOY0099"} & set(raw.items["item_id"])
    assert raw.notes["meta_rows_not_reviewed"] == 2
    unknown = _item(raw, "B00TOY0015")
    assert (unknown["title"], unknown["text"], list(unknown["concepts"])) == ("B00TOY0015", "B00TOY0015", [])
    assert raw.notes["items_without_metadata"] == 1


def test_concepts_hold_every_category_prefix_then_shared_title_keywords(loaded):
    _, raw = loaded
    figure = _item(raw, "B00TOY0001")
    assert list(figure["concepts"]) == [
        "Toys & Games",
        "Toys & Games > Action Figures",
        "Toys & Games > Action Figures > Super Heroes",
        "kw:hero",
        "kw:action",
        "kw:figure",
    ]
    assert figure["title"] == "Super Hero Action Figure"
    assert "Brand: Hasbro" in figure["text"]
    assert "Toys & Games > Action Figures > Super Heroes" in figure["text"]
    assert "Price: $9.99" in figure["text"]
    assert list(_item(raw, "B00TOY0012")["concepts"])[-2:] == ["kw:game", "kw:classic"]


def test_keywords_are_shared_long_alphabetic_non_stop_words(loaded):
    _, raw = loaded
    keyword_items: dict[str, int] = {}
    for concepts in raw.items["concepts"]:
        for concept in concepts:
            if concept.startswith("kw:"):
                keyword_items[concept] = keyword_items.get(concept, 0) + 1
    assert keyword_items
    for concept, count in keyword_items.items():
        word = concept.removeprefix("kw:")
        assert count >= 2 and len(word) >= 4 and word.isalpha() and word == word.lower()
        assert word not in STOP_WORDS
    titles = raw.items["title"].str.lower()
    assert titles.str.contains(r"\bwith\b").sum() >= 2 and "kw:with" not in keyword_items
    assert titles.str.contains(r"\bsuper\b").sum() == 1 and "kw:super" not in keyword_items
    assert titles.str.contains(r"\bcar\b").sum() >= 2 and "kw:car" not in keyword_items


def test_title_keywords_can_be_switched_off(loaded):
    release, raw = loaded
    plain = load_amazon(*FILES[release], title_keywords=False)
    assert plain.notes["title_keywords"] is False
    for with_kw, without_kw in zip(raw.items["concepts"], plain.items["concepts"], strict=True):
        assert list(without_kw) == [c for c in with_kw if not c.startswith("kw:")]
    assert plain.items[["item_id", "title", "text"]].equals(raw.items[["item_id", "title", "text"]])


def test_2014_keeps_every_category_path_and_numeric_price():
    raw = load_amazon(*FILES["2014"])
    house = list(_item(raw, "B00TOY0007")["concepts"])
    assert "Toys & Games > Dolls & Accessories > Dollhouses" in house
    assert "Home & Kitchen" in house and "Home & Kitchen > Furniture" in house
    assert _item(raw, "B00TOY0002")["text"].endswith("Price: $12.50.")


def test_2018_strips_html_unescapes_entities_and_ignores_junk_prices():
    raw = load_amazon(*FILES["2018"])
    meta_lines = _raw_lines(FILES["2018"][1])
    assert "<span" in meta_lines[0] and "Toys &amp; Games" in meta_lines[0]
    figure = _item(raw, "B00TOY0001")
    assert figure["title"] == "Super Hero Action Figure" and "<" not in figure["text"]
    assert figure["concepts"][0] == "Toys & Games"
    assert "Price" not in _item(raw, "B00TOY0002")["text"]
    assert raw.notes["duplicate_meta_rows"] == 1


def test_2014_meta_goes_through_literal_eval_and_2018_does_not(monkeypatch):
    calls = []

    def spy(text):
        calls.append(text)
        return real(text)

    real = amazon.literal_eval
    monkeypatch.setattr(amazon, "literal_eval", spy)
    raw = load_amazon(*FILES["2014"])
    meta_lines = _raw_lines(FILES["2014"][1])
    reviewed = set(raw.interactions["item_id"])
    # one literal_eval per metadata line of a reviewed item; unreviewed items are skipped unparsed
    assert calls == [line for line in meta_lines if ast.literal_eval(line)["asin"] in reviewed]
    assert len(calls) == len(meta_lines) - 2
    assert raw.notes["meta_syntax"] == "python-literal"
    calls.clear()
    assert load_amazon(*FILES["2018"]).notes["meta_syntax"] == "json"
    assert calls == []


def test_plain_text_files_load_like_gzipped_ones(loaded, tmp_path):
    release, raw = loaded
    plain = []
    for source in FILES[release]:
        target = tmp_path / source.name.removesuffix(".gz")
        with gzip.open(source, "rb") as packed, open(target, "wb") as unpacked:
            shutil.copyfileobj(packed, unpacked)
        plain.append(target)
    again = load_amazon(*plain)
    pd.testing.assert_frame_equal(again.interactions, raw.interactions)
    pd.testing.assert_frame_equal(again.items, raw.items)


@pytest.mark.parametrize(
    "payload",
    [
        "__import__('os').system('echo hi')",
        "{'asin': 'B00TOY0001', 'title': __import__('os').system('echo hi')}",
    ],
)
def test_code_in_a_meta_line_is_a_parse_error_never_executed(payload, tmp_path, monkeypatch):
    executed = []
    monkeypatch.setattr(os, "system", lambda command: executed.append(command) or 0)
    good_line = _raw_lines(FILES["2014"][1])[1]
    meta = _write_lines(tmp_path / "meta_Toys.json.gz", [good_line, payload])
    with pytest.raises(
        UserError, match=r"meta_Toys\.json\.gz line 2 is neither JSON nor a Python dict literal"
    ):
        load_amazon(FILES["2014"][0], meta)
    assert executed == []


def test_a_garbled_review_line_names_file_and_line(tmp_path):
    lines = _raw_lines(FILES["2018"][0])[:3]
    lines[2] = lines[2][:25]
    reviews = _write_lines(tmp_path / "Toys_5.json.gz", ["", *lines])
    with pytest.raises(UserError, match=r"Toys_5\.json\.gz line 4 is neither JSON"):
        load_amazon(reviews, FILES["2018"][1])


def test_reviews_without_required_keys_are_refused(tmp_path):
    record = json.loads(_raw_lines(FILES["2018"][0])[0])
    del record["unixReviewTime"]
    reviews = _write_lines(tmp_path / "Toys_5.json.gz", [json.dumps(record)])
    with pytest.raises(UserError, match=r"line 1 lacks unixReviewTime: the reviews file needs"):
        load_amazon(reviews, FILES["2018"][1])
    with pytest.raises(UserError, match=r"lacks reviewerID, unixReviewTime.*swap the reviews and metadata"):
        load_amazon(FILES["2018"][1], FILES["2018"][0])


def test_a_non_integer_review_time_is_refused(tmp_path):
    record = json.loads(_raw_lines(FILES["2018"][0])[0])
    record["unixReviewTime"] = "yesterday"
    reviews = _write_lines(tmp_path / "Toys_5.json.gz", [json.dumps(record)])
    with pytest.raises(UserError, match=r"line 1: unixReviewTime 'yesterday' is not an integer epoch"):
        load_amazon(reviews, FILES["2018"][1])


def test_meta_lines_without_asin_are_refused(tmp_path):
    meta = _write_lines(tmp_path / "meta.json.gz", ['{"title": "No asin here"}'])
    with pytest.raises(UserError, match=r"line 1 has no 'asin'"):
        load_amazon(FILES["2018"][0], meta)


def test_empty_files_are_refused(tmp_path):
    empty = _write_lines(tmp_path / "empty.json.gz", ["", "   "])
    with pytest.raises(UserError, match=r"reviews file .*empty\.json\.gz is empty"):
        load_amazon(empty, FILES["2018"][1])
    with pytest.raises(UserError, match=r"metadata file .*empty\.json\.gz is empty"):
        load_amazon(FILES["2018"][0], empty)


def test_meta_of_another_category_is_refused(tmp_path):
    meta = _write_lines(tmp_path / "meta_Beauty.json.gz", ['{"asin": "B0BEAUTY01", "title": "Lipstick"}'])
    with pytest.raises(UserError, match=r"describes an item reviewed in .*same category"):
        load_amazon(FILES["2018"][0], meta)


def test_missing_folder_and_corrupt_files_are_refused(tmp_path):
    with pytest.raises(UserError, match=r"file not found: .*nope\.json\.gz"):
        load_amazon(tmp_path / "nope.json.gz", FILES["2018"][1])
    with pytest.raises(UserError, match=r"is not a file"):
        load_amazon(tmp_path, FILES["2018"][1])
    truncated, garbage = tmp_path / "truncated.json.gz", tmp_path / "garbage.json.gz"
    truncated.write_bytes(FILES["2018"][0].read_bytes()[:900])
    garbage.write_bytes(b"\x1f\x8b" + b"not really gzip" * 10)
    for corrupt in (truncated, garbage):
        with pytest.raises(UserError, match=re.escape(f"cannot read {corrupt}")):
            load_amazon(corrupt, FILES["2018"][1])
    latin = tmp_path / "latin.json"
    latin.write_bytes('{"title": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(UserError, match=re.escape(f"cannot read {latin}")):
        load_amazon(latin, FILES["2018"][1])
