"""Amazon review datasets: a reviews file plus a metadata file, 2014 (McAuley) or 2018 (Ni) release.

2014: reviews are JSON lines; metadata lines are Python dict literals (single quotes), read with
``ast.literal_eval`` (never ``eval``); ``categories`` is a list of category paths and ``price`` a number.
2018: both files are JSON lines; ``category`` is one flat path, ``price`` a string like ``"$9.99"`` and
titles may carry HTML. Each line is tried as JSON first and as a Python literal second, so the format
is found per file without a flag. Files may be gzipped or plain text.

Concepts of an item: every prefix of each of its category paths joined with `` > `` (e.g.
``Toys & Games``, ``Toys & Games > Dolls``) and, optionally, title keywords ``kw:<word>``.
"""

from __future__ import annotations

import gzip
import html
import json
import re
import zlib
from ast import literal_eval
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pandas as pd

from tracer.data.raw import RawData
from tracer.errors import UserError

REVIEW_KEYS = ("reviewerID", "asin", "unixReviewTime")
CATEGORY_SEPARATOR = " > "
KEYWORD_PREFIX = "kw:"
KEYWORD_MIN_LENGTH = 4
KEYWORD_MIN_ITEMS = 2
STOP_WORDS = frozenset(
    "about also been both does each every from have into just like made make more most much only onto "
    "other over same some such than that their them then there these they this those under very were "
    "what when where which while will with within without would your".split()
)

_TAG = re.compile(r"<[^>]*>")
_WORD = re.compile(r"[^\W\d_]+")
# Starts with the literal "asin" so the scan is fast; may also catch keys ending in "asin" (harmless:
# such a line is only parsed when it need not be).
_ASIN_FIELD = re.compile(r"""asin['"]\s*:\s*['"]([^'"]+)['"]""")
_PRICE = re.compile(r"\$\s?\d[\d,]*(?:\.\d+)?(?:\s*-\s*\$\s?\d[\d,]*(?:\.\d+)?)?")
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class ItemMeta:
    """What the metadata file says about one reviewed item (names already cleaned of HTML)."""

    title: str
    brand: str
    category_paths: list[list[str]]
    price: str


@dataclass
class MetaScan:
    """Metadata of the reviewed items, plus what the scan saw on the way."""

    items: dict[str, ItemMeta] = field(default_factory=dict)
    syntaxes: Counter = field(default_factory=Counter)
    category_styles: Counter = field(default_factory=Counter)
    lines: int = 0
    not_reviewed: int = 0
    duplicates: int = 0


def load_amazon(reviews_path: str | Path, meta_path: str | Path, *, title_keywords: bool = True) -> RawData:
    """Read an Amazon reviews file and its metadata file into :class:`RawData`.

    Interactions keep the reviews' file order (exact duplicate reviews are dropped); items are the
    reviewed asins in order of first review. Items without a metadata line keep their asin as title.
    """
    reviews_path, meta_path = Path(reviews_path), Path(meta_path)
    interactions, review_notes = _read_reviews(reviews_path)
    reviewed = list(dict.fromkeys(interactions["item_id"]))
    scan = _scan_meta(meta_path, set(reviewed))
    if not scan.items:
        raise UserError(
            f"no line of {meta_path} describes an item reviewed in {reviews_path}: "
            "pass the metadata file of the same category and release"
        )
    items = _build_items(reviewed, scan.items, title_keywords)
    notes = {
        "format": "2014" if _is_2014(scan) else "2018",
        "meta_syntax": scan.syntaxes.most_common(1)[0][0],
        **review_notes,
        "meta_lines": scan.lines,
        "meta_rows_not_reviewed": scan.not_reviewed,
        "duplicate_meta_rows": scan.duplicates,
        "items_without_metadata": len(reviewed) - len(scan.items),
        "items_without_title": sum(1 for meta in scan.items.values() if not meta.title),
        "title_keywords": title_keywords,
    }
    return RawData(
        interactions=interactions,
        items=items,
        source=f"amazon-{_category_name(reviews_path)}",
        sources=[reviews_path, meta_path],
        notes=notes,
    )


def _read_reviews(path: Path) -> tuple[pd.DataFrame, dict]:
    users: list[str] = []
    item_ids: list[str] = []
    timestamps: list[int] = []
    ratings: list[float | None] = []
    seen: set[tuple[str, str, int]] = set()
    lines = duplicates = 0
    for number, line in _lines(path):
        record, _ = _parse_line(line, path, number)
        lines += 1
        missing = [key for key in REVIEW_KEYS if key not in record]
        if missing:
            raise UserError(
                f"{path} line {number} lacks {', '.join(missing)}: the reviews file needs "
                f"{', '.join(REVIEW_KEYS)} on every line (did you swap the reviews and metadata files?)"
            )
        user, item = str(record["reviewerID"]), str(record["asin"])
        timestamp = _epoch(record["unixReviewTime"], path, number)
        if (user, item, timestamp) in seen:
            duplicates += 1
            continue
        seen.add((user, item, timestamp))
        users.append(user)
        item_ids.append(item)
        timestamps.append(timestamp)
        ratings.append(record.get("overall"))
    if not lines:
        raise UserError(f"reviews file {path} is empty: pass an Amazon reviews file (one review per line)")
    frame = pd.DataFrame(
        {
            "user_id": pd.Series(users, dtype=str),
            "item_id": pd.Series(item_ids, dtype=str),
            "timestamp": pd.Series(timestamps, dtype="int64"),
        }
    )
    has_ratings = all(rating is not None for rating in ratings)
    if has_ratings:
        frame["rating"] = pd.to_numeric(pd.Series(ratings), errors="coerce").astype("float64")
    notes = {"review_lines": lines, "duplicate_reviews_dropped": duplicates, "ratings": has_ratings}
    return frame, notes


def _epoch(value: object, path: Path, number: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise UserError(
        f"{path} line {number}: unixReviewTime {value!r} is not an integer epoch: fix or delete that line"
    )


def _scan_meta(path: Path, reviewed: set[str]) -> MetaScan:
    """Collect the metadata of reviewed items; lines naming only unreviewed asins are skipped unparsed."""
    scan = MetaScan()
    for number, line in _lines(path):
        scan.lines += 1
        quoted_asins = _ASIN_FIELD.findall(line)
        if quoted_asins and not reviewed.intersection(quoted_asins):
            scan.not_reviewed += 1
            continue
        record, syntax = _parse_line(line, path, number)
        scan.syntaxes[syntax] += 1
        if "asin" not in record:
            raise UserError(
                f"{path} line {number} has no 'asin': pass an Amazon metadata file (one item per line)"
            )
        asin = str(record["asin"])
        if asin not in reviewed:
            scan.not_reviewed += 1
        elif asin in scan.items:
            scan.duplicates += 1
        else:
            scan.items[asin] = _item_meta(record, scan.category_styles)
    if not scan.lines:
        raise UserError(f"metadata file {path} is empty: pass the Amazon metadata file of the same category")
    return scan


def _item_meta(record: dict, category_styles: Counter) -> ItemMeta:
    if "categories" in record:
        category_styles["categories"] += 1
        raw_paths = record["categories"] or []
    elif "category" in record:
        category_styles["category"] += 1
        raw_paths = [record["category"] or []]
    else:
        raw_paths = []
    paths = []
    for raw_path in raw_paths:
        names = [_clean(name) for name in ([raw_path] if isinstance(raw_path, str) else raw_path)]
        if path := [name for name in names if name]:
            paths.append(path)
    return ItemMeta(
        title=_clean(record.get("title")),
        brand=_clean(record.get("brand")),
        category_paths=paths,
        price=_price(record.get("price")),
    )


def _is_2014(scan: MetaScan) -> bool:
    styles = scan.category_styles
    return scan.syntaxes["python-literal"] > 0 or styles["categories"] > styles["category"]


def _clean(value: object) -> str:
    """Text without HTML tags or entities, whitespace collapsed; '' for anything that is not a string."""
    if not isinstance(value, str):
        return ""
    return " ".join(html.unescape(_TAG.sub(" ", value)).split())


def _price(value: object) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return f"${value:.2f}"
    if isinstance(value, str) and _PRICE.fullmatch(value.strip()):
        return value.strip()
    return ""


def _build_items(reviewed: list[str], metas: dict[str, ItemMeta], title_keywords: bool) -> pd.DataFrame:
    keywords = _title_keywords(metas) if title_keywords else {}
    titles, texts, concepts = [], [], []
    for asin in reviewed:
        meta = metas.get(asin)
        if meta is None:
            titles.append(asin)
            texts.append(asin)
            concepts.append([])
            continue
        title = meta.title or asin
        titles.append(title)
        texts.append(_item_text(title, meta))
        concepts.append(_category_concepts(meta.category_paths) + keywords.get(asin, []))
    return pd.DataFrame(
        {
            "item_id": pd.Series(reviewed, dtype=str),
            "title": pd.Series(titles, dtype=str),
            "text": pd.Series(texts, dtype=str),
            "concepts": pd.Series(concepts, dtype=object),
        }
    )


def _item_text(title: str, meta: ItemMeta) -> str:
    """E.g. ``Hero Figure. Brand: Hasbro. Category: Toys & Games > Action Figures. Price: $9.99.``"""
    parts = [title]
    if meta.brand:
        parts.append(f"Brand: {meta.brand}")
    if meta.category_paths:
        parts.append("Category: " + "; ".join(CATEGORY_SEPARATOR.join(path) for path in meta.category_paths))
    if meta.price:
        parts.append(f"Price: {meta.price}")
    return " ".join(part if part.endswith((".", "!", "?")) else f"{part}." for part in parts)


def _category_concepts(paths: list[list[str]]) -> list[str]:
    prefixes = (CATEGORY_SEPARATOR.join(path[: depth + 1]) for path in paths for depth in range(len(path)))
    return list(dict.fromkeys(prefixes))


def _title_keywords(metas: dict[str, ItemMeta]) -> dict[str, list[str]]:
    """``kw:<word>`` concepts per item: title words kept when at least KEYWORD_MIN_ITEMS items share them."""
    words_of = {asin: _title_words(meta.title) for asin, meta in metas.items() if meta.title}
    item_counts = Counter(word for words in words_of.values() for word in words)
    return {
        asin: [KEYWORD_PREFIX + word for word in words if item_counts[word] >= KEYWORD_MIN_ITEMS]
        for asin, words in words_of.items()
    }


def _title_words(title: str) -> list[str]:
    words = _WORD.findall(title.lower())
    return list(dict.fromkeys(w for w in words if len(w) >= KEYWORD_MIN_LENGTH and w not in STOP_WORDS))


def _category_name(reviews_path: Path) -> str:
    """``reviews_Toys_and_Games_5.json.gz`` / ``Toys_and_Games_5.json`` -> ``toys_and_games``."""
    name = reviews_path.name.lower()
    for suffix in (".gz", ".json", ".jsonl"):
        name = name.removesuffix(suffix)
    return name.removeprefix("reviews_").removesuffix("_5") or "reviews"


def _parse_line(line: str, path: Path, number: int) -> tuple[dict, str]:
    """One JSON object or Python dict literal; ``ast.literal_eval`` evaluates literals only, no code."""
    try:
        record, syntax = json.loads(line), "json"
    except (ValueError, RecursionError):
        try:
            record, syntax = literal_eval(line), "python-literal"
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise UserError(
                f"{path} line {number} is neither JSON nor a Python dict literal ({line[:40]!r}...): "
                "fix or delete that line, or check that this is an Amazon reviews/metadata file"
            ) from None
    if not isinstance(record, dict):
        raise UserError(f"{path} line {number} is not an object/dict: one record per line is expected")
    return record, syntax


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers, from a gzipped or plain UTF-8 text file."""
    with _open_text(path) as handle:
        try:
            for number, line in enumerate(handle, start=1):
                if line := line.strip():
                    yield number, line
        except (OSError, EOFError, zlib.error, UnicodeDecodeError) as error:
            raise UserError(f"cannot read {path} ({error}): re-download or unpack the file") from None


@contextmanager
def _open_text(path: Path) -> Iterator[IO[str]]:
    if not path.exists():
        raise UserError(f"file not found: {path}: check the path (Amazon files are downloaded by you)")
    if not path.is_file():
        raise UserError(f"{path} is not a file: pass the .json or .json.gz file itself")
    try:
        with open(path, "rb") as probe:
            gzipped = probe.read(2) == _GZIP_MAGIC
        opener = gzip.open if gzipped else open
        handle = opener(path, "rt", encoding="utf-8")
    except OSError as error:
        raise UserError(f"cannot read {path} ({error}): check the file's permissions") from None
    with handle:
        yield handle
