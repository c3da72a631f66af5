"""Concepts (docs/method.md §3): a predicate on item metadata, resolved to items and target sets.

A concept spec is one or more terms joined by ``;`` (their union):

- a concept name from ``items.parquet``'s ``concepts`` lists (a genre or category), e.g. ``Horror``;
- ``title~REGEX``: items whose title matches the Python regular expression (``re.search``);
- ``items:FILE``: the item ids listed in FILE, one per line.

Example: ``"Horror; title~(?i)zombie"``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tracer.data.artifact import Dataset
from tracer.data.sequences import SequenceData
from tracer.errors import UserError

TERM_SEPARATOR = ";"


@dataclass(frozen=True)
class Concept:
    """A resolved concept. ``item_mask``: bool (n_items,) in item-index order."""

    spec: str
    item_mask: np.ndarray

    @property
    def name(self) -> str:
        return self.spec

    @property
    def item_indices(self) -> np.ndarray:
        return np.flatnonzero(self.item_mask)

    @property
    def n_items(self) -> int:
        return int(self.item_mask.sum())


@dataclass(frozen=True)
class ConceptTargets:
    """Forget/retain sets of a concept over the training targets of :class:`SequenceData`.

    ``forget_targets``: bool (n_targets,) aligned with ``SequenceData.training_targets()``: True where
    the target item is in the concept (D_f); the rest is D_r. ``forget_test_users`` /
    ``forget_valid_users``: bool (n_users,) whose held-out target is in the concept.
    """

    forget_targets: np.ndarray
    forget_test_users: np.ndarray
    forget_valid_users: np.ndarray

    @property
    def n_forget(self) -> int:
        return int(self.forget_targets.sum())

    @property
    def n_retain(self) -> int:
        return int((~self.forget_targets).sum())


def concept_index(items: pd.DataFrame) -> dict[str, np.ndarray]:
    """Every concept name -> the indices of its items."""
    exploded = items["concepts"].explode().dropna()
    return {
        str(name): np.sort(group.index.to_numpy()) for name, group in exploded.groupby(exploded, sort=True)
    }


def _name_mask(name: str, index: dict[str, np.ndarray], n_items: int) -> np.ndarray:
    match = name if name in index else None
    if match is None:
        folded = [known for known in index if known.lower() == name.lower()]
        match = folded[0] if len(folded) == 1 else None
    if match is None:
        close = difflib.get_close_matches(name, list(index), n=5, cutoff=0.5)
        hint = (
            f"did you mean {', '.join(repr(c) for c in close)}?"
            if close
            else "run `tracer concepts DATA` to list them"
        )
        raise UserError(f"unknown concept {name!r}: {hint}")
    mask = np.zeros(n_items, dtype=bool)
    mask[index[match]] = True
    return mask


def _title_mask(pattern: str, titles: pd.Series) -> np.ndarray:
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise UserError(
            f"invalid title regex {pattern!r} ({error}): fix the expression after 'title~'"
        ) from None
    return titles.map(lambda title: compiled.search(str(title)) is not None).to_numpy(dtype=bool)


def _file_mask(path: str, item_ids: pd.Series) -> np.ndarray:
    file = Path(path)
    if not file.is_file():
        raise UserError(f"item list {file} not found: give an existing file after 'items:'")
    listed = [line.strip() for line in file.read_text().splitlines() if line.strip()]
    known = set(item_ids)
    unknown = [item for item in listed if item not in known]
    if unknown:
        raise UserError(
            f"{file} lists item ids not in the catalogue ({', '.join(unknown[:5])}): fix or remove them"
        )
    return item_ids.isin(listed).to_numpy(dtype=bool)


def resolve_concept(dataset: Dataset, spec: str) -> Concept:
    """Resolve ``spec`` to a non-empty, proper subset of the catalogue (else UserError)."""
    terms = [term.strip() for term in spec.split(TERM_SEPARATOR) if term.strip()]
    if not terms:
        raise UserError("empty concept spec: give a concept name, title~REGEX or items:FILE")
    items = dataset.items
    index = concept_index(items)
    mask = np.zeros(len(items), dtype=bool)
    for term in terms:
        if term.startswith("title~"):
            mask |= _title_mask(term[len("title~") :], items["title"])
        elif term.startswith("items:"):
            mask |= _file_mask(term[len("items:") :], items["item_id"])
        else:
            mask |= _name_mask(term, index, len(items))
    if not mask.any():
        raise UserError(
            f"concept {spec!r} matches no item: choose a concept with items (`tracer concepts DATA`)"
        )
    if mask.all():
        raise UserError(f"concept {spec!r} covers the whole catalogue: nothing would be left to recommend")
    return Concept(spec=spec, item_mask=mask)


def concept_targets(sequences: SequenceData, concept: Concept) -> ConceptTargets:
    """Split the training targets into forget (target in the concept) and retain."""
    return ConceptTargets(
        forget_targets=concept.item_mask[sequences.training_target_items()],
        forget_test_users=concept.item_mask[sequences.test_targets],
        forget_valid_users=concept.item_mask[sequences.valid_targets],
    )


def concept_table(dataset: Dataset, sequences: SequenceData) -> pd.DataFrame:
    """One row per concept: items, forget training targets, test users whose target is in it."""
    index = concept_index(dataset.items)
    target_counts = np.bincount(sequences.training_target_items(), minlength=dataset.n_items)
    test_counts = np.bincount(sequences.test_targets, minlength=dataset.n_items)
    rows = [
        {
            "concept": name,
            "items": len(members),
            "forget_targets": int(target_counts[members].sum()),
            "test_users": int(test_counts[members].sum()),
        }
        for name, members in index.items()
    ]
    return pd.DataFrame(rows, columns=["concept", "items", "forget_targets", "test_users"])


def evaluable_concepts(table: pd.DataFrame, min_test_users: int) -> pd.DataFrame:
    """The rows of :func:`concept_table` with at least ``min_test_users`` test users whose test item is
    in the concept (enough forget-test users to measure it), most such users first."""
    kept = table[table["test_users"] >= min_test_users]
    return kept.sort_values(["test_users", "concept"], ascending=[False, True]).reset_index(drop=True)
