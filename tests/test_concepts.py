"""Concept specs resolve to the right items and forget/retain sets; bad specs are clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers.movielens_files import small_catalogue, write_atomic_dataset
from tracer.cli import main
from tracer.data.artifact import load_dataset
from tracer.data.concepts import concept_table, concept_targets, resolve_concept
from tracer.data.sequences import build_sequences
from tracer.errors import UserError

# items 1..6: genres Horror, Comedy, Drama Horror, Comedy, Drama, Children's Comedy
INTERACTIONS = [
    ("1", "1", "1"),
    ("1", "2", "2"),
    ("1", "3", "3"),
    ("1", "4", "4"),
    ("1", "5", "5"),
    ("2", "2", "1"),
    ("2", "1", "2"),
    ("2", "6", "3"),
    ("2", "3", "4"),
]


@pytest.fixture()
def dataset(tmp_path):
    folder = write_atomic_dataset(tmp_path / "raw", INTERACTIONS, small_catalogue())
    out = tmp_path / "data"
    assert main(["prepare", "--dataset", "ml-100k", "--path", str(folder), "--out", str(out)]) == 0
    return load_dataset(out)


def items_of(dataset, concept) -> list[str]:
    return dataset.items["item_id"].to_numpy()[concept.item_indices].tolist()


def test_name_regex_file_and_union(dataset, tmp_path):
    assert items_of(dataset, resolve_concept(dataset, "Horror")) == ["1", "3"]
    assert items_of(dataset, resolve_concept(dataset, "horror")) == [
        "1",
        "3",
    ]  # unique case-insensitive match
    assert items_of(dataset, resolve_concept(dataset, r"title~Movie [56]$")) == ["5", "6"]
    listed = tmp_path / "ids.txt"
    listed.write_text("4\n\n2\n")
    assert items_of(dataset, resolve_concept(dataset, f"items:{listed}")) == ["2", "4"]
    union = resolve_concept(dataset, f"Horror; title~6$; items:{listed}")
    assert items_of(dataset, union) == ["1", "2", "3", "4", "6"]


def test_forget_and_retain_targets_match_hand_count(dataset):
    sequences = build_sequences(dataset)
    concept = resolve_concept(dataset, "Horror")
    targets = concept_targets(sequences, concept)
    # user 1 train: 1 2 3 (valid 4, test 5) -> targets 2, 3 ; user 2 train: 2 1 (valid 6, test 3) -> target 1
    assert targets.forget_targets.tolist() == [False, True, True]
    assert (targets.n_forget, targets.n_retain) == (2, 1)
    assert targets.forget_test_users.tolist() == [False, True]
    assert targets.forget_valid_users.tolist() == [False, False]
    table = concept_table(dataset, sequences).set_index("concept")
    assert table.loc["Horror"].tolist() == [2, 2, 1]
    assert table.loc["Comedy"].tolist() == [3, 1, 0]  # items 2, 4, 6; only item 2 is a training target


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("Horor", "unknown concept 'Horor': did you mean 'Horror'?"),
        ("Space Opera", "unknown concept 'Space Opera': run `tracer concepts DATA`"),
        ("title~^Nothing", "matches no item"),
        ("title~Movie", "covers the whole catalogue"),
        ("title~(", "invalid title regex"),
        ("items:/no/such/file.txt", "not found"),
        ("  ;  ", "empty concept spec"),
    ],
)
def test_bad_specs(dataset, spec, message):
    with pytest.raises(UserError, match=None) as error:
        resolve_concept(dataset, spec)
    assert message in str(error.value)


def test_items_file_with_unknown_ids(dataset, tmp_path):
    listed = tmp_path / "ids.txt"
    listed.write_text("1\nzzz\n")
    with pytest.raises(UserError, match="not in the catalogue"):
        resolve_concept(dataset, f"items:{listed}")


def test_concepts_cli_lists_and_shows(dataset, capsys):
    assert main(["concepts", str(dataset.root), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {row["concept"]: row["items"] for row in rows} == {
        "Children's": 1,
        "Comedy": 3,
        "Drama": 2,
        "Horror": 2,
    }
    assert main(["concepts", str(dataset.root), "--show", "Horror", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["items"], shown["forget_targets"], shown["test_users"]) == (2, 2, 1)
    assert main(["concepts", str(dataset.root), "--show", "Horor"]) == 2
    assert "did you mean 'Horror'" in capsys.readouterr().err
    assert np.array_equal(
        resolve_concept(dataset, "Drama").item_mask, np.array([False, False, True, False, True, False])
    )
