"""`tracer bench` end to end on a tiny grid: every cell gets a row, the rankings behind each number are
saved and reproduce it, a rerun skips finished cells, and the report is written."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.helpers.erasure_world import N_ITEMS, write_world
from tracer.cli import main
from tracer.data.artifact import load_dataset
from tracer.data.concepts import resolve_concept
from tracer.data.sequences import build_sequences
from tracer.evaluation.evaluate import Ranking
from tracer.evaluation.metrics import exposure_at_k, ndcg_at_k
from tracer.io import read_json, write_json
from tracer.pipelines.bench import settings_tag as bench_tag


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    world = write_world(root / "world")
    vectors = root / "vectors.npy"
    np.save(vectors, np.random.default_rng(0).normal(size=(N_ITEMS, 8)).astype(np.float32))
    config = {
        "datasets": {
            "tiny": {
                "prepare": {"dataset": "ml-100k", "path": str(root / "world" / "raw")},
                "sids": {"method": "rq-kmeans", "vectors": str(vectors), "codebook_size": 4, "levels": 2},
                "train": {"preset": "tiny", "max_epochs": 2},
            }
        },
        "concepts": {"tiny": ["Horror"]},
        "methods": ["tracer", "ga", "filter"],
        "seeds": [0],
        "method_settings": {"tracer": {"steps": 3}, "ga": {"steps": 3}},
        "evaluation": {"mass_users": 10, "beam_width": 24, "k_max": 10},
        "attack": {"examples": 8, "steps": 2},
        "examples": 2,
    }
    path = root / "bench.yaml"
    path.write_text(yaml.safe_dump(config))
    out = root / "out"
    assert main(["bench", str(path), "--out", str(out)]) == 0
    return world, path, out


def test_every_cell_has_a_row_and_a_report(bench_run):
    _, _, out = bench_run
    results = json.loads((out / "results.json").read_text())
    assert sorted(row["method"] for row in results["rows"]) == [
        "filter",
        "ga",
        "original",
        "retrain",
        "tracer",
    ]
    assert (out / "report.html").is_file() and (out / "results.csv").is_file()
    rows = {row["method"]: row for row in results["rows"]}
    assert rows["filter"]["exposure@10"] == 0.0
    assert rows["filter"]["concept_mass"] == pytest.approx(rows["original"]["concept_mass"], rel=1e-6)
    assert rows["tracer"]["top10_overlap"] is not None and rows["retrain"]["top10_overlap"] is None
    assert "tiny|Horror" in results["entanglement"] and len(results["examples"]) == 2


def test_saved_rankings_reproduce_the_numbers(bench_run):
    world, _, out = bench_run
    results = json.loads((out / "results.json").read_text())
    dataset = load_dataset(next((out / "work" / "tiny").glob("data-*")))
    data = build_sequences(dataset)
    mask = resolve_concept(dataset, "Horror").item_mask
    for row in results["rows"]:
        ranking = Ranking.from_frame(
            pd.read_parquet(out / "recs" / f"{row['method']}.parquet"), data.user_ids, data.item_ids
        )
        retain = ~mask[data.test_targets]
        assert ndcg_at_k(ranking.items[retain], data.test_targets[retain], 10).mean() == pytest.approx(
            row["retain_ndcg@10"]
        )
        assert exposure_at_k(ranking.items, mask, 10).mean() == pytest.approx(row["exposure@10"])


def test_rerun_skips_finished_cells(bench_run):
    _, path, out = bench_run
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "cells").iterdir()}
    assert main(["bench", str(path), "--out", str(out)]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "cells").iterdir()} == stamps


def test_bad_bench_config(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"datasets": {"x": {}}, "concepts": {"x": ["A"]}, "methods": ["magic"]}))
    assert main(["bench", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "unknown erasure method 'magic'" in capsys.readouterr().err


def test_cell_tags_follow_the_method_config_files(tmp_path, monkeypatch):
    """A changed default in configs/unlearning/<method>.yaml gives new artifact and cell tags, so a
    resumed grid never reuses a cell computed with other settings; grid overrides change them too."""
    from tracer.pipelines import bench as bench_module
    from tracer.pipelines.bench import Bench
    from tracer.pipelines.bench_config import load_bench_config

    path = tmp_path / "bench.yaml"
    config = {
        "datasets": {"tiny": {"prepare": {"dataset": "ml-100k"}, "train": {"preset": "tiny"}}},
        "concepts": {"tiny": ["Horror"]},
        "methods": ["tracer", "ga"],
    }
    path.write_text(yaml.safe_dump(config))
    bench = Bench(load_bench_config(path), tmp_path / "out")
    plan = bench.config.datasets[0]
    before = {m: bench.cell_key(plan, "Horror", m, 0) for m in ("tracer", "tracer-no-mask", "ga")}

    defaults = bench_module.method_defaults
    monkeypatch.setattr(
        bench_module,
        "method_defaults",
        lambda method: {**defaults(method), "steps": 7} if method.startswith("tracer") else defaults(method),
    )
    after = {m: bench.cell_key(plan, "Horror", m, 0) for m in before}
    assert after["tracer"] != before["tracer"] and after["tracer-no-mask"] != before["tracer-no-mask"]
    assert after["ga"] == before["ga"]
    assert bench.effective_settings("tracer-no-mask")["use_mask"] is False  # ablation switch kept


def test_a_grid_of_another_shape_reuses_finished_cells_and_their_rankings(bench_run, tmp_path):
    """Adding a concept nests the rankings by concept; the finished Horror cells are reused (not
    recomputed) and their rankings copied to the new layout."""
    _, path, finished = bench_run
    out = tmp_path / "out"
    shutil.copytree(finished, out)  # the other tests keep their folder
    config = yaml.safe_load(path.read_text())
    config["concepts"]["tiny"] = ["Horror", "Drama"]
    config["methods"] = ["filter"]
    wider = tmp_path / "wider.yaml"
    wider.write_text(yaml.safe_dump(config))
    stamp = (out / "cells").glob("*horror__filter*")
    stamps = {p.name: p.stat().st_mtime_ns for p in stamp}
    assert main(["bench", str(wider), "--out", str(out)]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*horror__filter*")} == stamps
    for method in ("retrain", "filter"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(out / "recs" / "horror" / f"{method}.parquet"),
            pd.read_parquet(out / "recs" / f"{method}.parquet"),
        )
    assert (out / "recs" / "drama" / "filter.parquet").is_file()


def test_a_finished_model_trained_from_an_edited_preset_is_refused(tmp_path):
    """Model folders are tagged by the grid's settings, which name a preset file; when that file changes
    after the model was trained, the grid must not reuse it silently."""
    from tracer.errors import UserError
    from tracer.pipelines.bench import Bench
    from tracer.pipelines.bench_config import load_bench_config
    from tracer.training.config import load_preset

    preset = tmp_path / "preset.yaml"
    load_preset("tiny").save(preset)
    path = tmp_path / "bench.yaml"
    config = {
        "datasets": {"tiny": {"prepare": {"dataset": "ml-100k"}, "train": {"preset": str(preset)}}},
        "concepts": {"tiny": ["Horror"]},
        "methods": ["ga"],
    }
    path.write_text(yaml.safe_dump(config))
    bench = Bench(load_bench_config(path), tmp_path / "out")
    plan = bench.config.datasets[0]
    folder = bench.work(plan) / f"model-seed0-{bench_tag(plan.train)}"
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text("{}")  # a finished run: model_dir must not train
    load_preset(preset).replace(seed=0, device="cuda").save(folder / "train_config.yaml")
    assert bench.model_dir(plan, 0) == folder  # same settings (the device does not count): reused

    load_preset(preset).replace(lr=0.5).save(preset)
    with pytest.raises(UserError, match=r"train\.lr"):
        bench.model_dir(plan, 0)


def test_bench_carries_the_retrain_warning_into_results(bench_run, tmp_path, capsys):
    """A Retrain artifact's warning about its schedule (tests/test_retrain_schedule.py) reaches results.json
    and stderr, also when every cell is reused."""
    _, path, out = bench_run
    assert read_json(out / "results.json")["meta"]["warnings"] == []
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    (manifest,) = (copy / "work" / "tiny" / "erased" / "horror").glob("retrain-seed0-*/manifest.json")
    record = read_json(manifest)
    record["summary"]["warning"] = "Retrain stopped early at epoch 1"
    write_json(manifest, record)
    assert main(["bench", str(path), "--out", str(copy)]) == 0  # every cell is reused
    want = "tiny, Horror, seed 0: Retrain stopped early at epoch 1"
    assert read_json(copy / "results.json")["meta"]["warnings"] == [want]
    assert f"warning: {want}" in capsys.readouterr().err
