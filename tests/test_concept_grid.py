"""Every concept (docs/method.md §5.1): the concepts with enough test users, the grids that run them, and
per-concept extra seeds in a bench config."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tracer.cli import main
from tracer.data.artifact import load_dataset
from tracer.data.concepts import concept_table, evaluable_concepts
from tracer.data.sequences import build_sequences
from tracer.errors import UserError
from tracer.pipelines.bench import Bench
from tracer.pipelines.bench_config import load_bench_config, parse_bench_config
from tracer.resources import config_file

TUNING = ["Horror", "Children's"]


def test_evaluable_concepts_keep_those_with_enough_test_users_most_first():
    table = pd.DataFrame(
        {"concept": ["a", "b", "c", "d"], "items": 1, "forget_targets": 1, "test_users": [19, 20, 35, 20]}
    )
    assert evaluable_concepts(table, 20)["concept"].tolist() == ["c", "b", "d"]  # 20 is enough; ties by name


def test_the_concepts_cli_filters_by_test_users(world, capsys):
    table = concept_table(load_dataset(world.data_dir), build_sequences(load_dataset(world.data_dir)))
    threshold = int(table["test_users"].median())
    assert main(["concepts", str(world.data_dir), "--min-test-users", str(threshold), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    expected = table[table["test_users"] >= threshold].sort_values("test_users", ascending=False)
    assert [row["concept"] for row in listed] == expected["concept"].tolist()
    assert main(["concepts", str(world.data_dir), "--min-test-users", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --min-test-users must be at least 1, got 0"


def test_the_ml100k_grid_holds_every_genre_with_20_test_users_on_3_seeds(tmp_path):
    assert main(["prepare", "--dataset", "ml-100k", "--out", str(tmp_path / "data")]) == 0
    dataset = load_dataset(tmp_path / "data")
    expected = evaluable_concepts(concept_table(dataset, build_sequences(dataset)), 20)["concept"]
    config = load_bench_config(config_file("bench-ml100k-concepts.yaml"))
    assert sorted(config.concepts["ml-100k"]) == sorted(expected) and set(TUNING) <= set(expected)
    assert all(config.concept_seeds(c) == [0, 1, 2] for c in expected)
    assert {"retrain", "tracer-anchored", "tracer-paper", "filter", "tracer-deep"} <= set(config.all_methods)


def test_the_ml1m_grid_runs_six_held_out_genres_once_and_the_tuning_concepts_on_3_seeds():
    config = load_bench_config(config_file("bench-ml1m-concepts.yaml"))
    concepts = config.concepts["ml-1m"]
    held_out = [c for c in concepts if c not in TUNING]
    assert len(held_out) == 6 and set(TUNING) <= set(concepts)
    assert {c: config.concept_seeds(c) for c in concepts} == {
        **dict.fromkeys(held_out, [0]),
        **dict.fromkeys(TUNING, [0, 1, 2]),
    }


GRID = {"datasets": {"ml-100k": None}, "concepts": {"ml-100k": ["Horror", "War"]}, "methods": ["filter"]}


def test_extra_seeds_add_cells_for_their_concept_only(tmp_path, monkeypatch):
    config = parse_bench_config({**GRID, "seeds": [0], "extra_seeds": {"Horror": [2, 0]}})
    assert config.concept_seeds("Horror") == [0, 2] and config.concept_seeds("War") == [0]
    assert config.all_seeds == [0, 2]
    cells = []

    def run_cell(self, plan, concept, method, seed, retrain):
        cells.append((concept, method, seed))
        return {"method": method}

    monkeypatch.setattr(Bench, "run_cell", run_cell)
    monkeypatch.setattr(Bench, "_ranking", lambda *args: None)
    monkeypatch.setattr(Bench, "_as_metrics", lambda self, row: row)
    monkeypatch.setattr(Bench, "results", lambda self, rows, warnings, seconds: rows)
    bench = Bench(config, tmp_path)
    bench.run()
    assert sorted({(c, s) for c, _, s in cells}) == [("Horror", 0), ("Horror", 2), ("War", 0)]
    assert len(cells) == 3 * len(config.all_methods)
    assert bench.recs_path(config.datasets[0], "War", "filter", 0).parent.name == "seed0"  # nested by seed
    with pytest.raises(UserError, match=r"extra_seeds names concept\(s\) \['Drama'\] that no dataset lists"):
        parse_bench_config({**GRID, "extra_seeds": {"Drama": [1]}})
