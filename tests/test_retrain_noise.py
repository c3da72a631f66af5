"""benchmarks/retrain_noise.py: another Retrain trains with another seed, and the shares are exact."""

from __future__ import annotations

import sys

import pytest
from benchmarks import retrain_noise, retrain_noise_pool
from safetensors.torch import load_file

from tracer.io import read_json, write_json
from tracer.unlearning.runner import EraseRequest, erase

pytestmark = pytest.mark.usefixtures("one_thread")


def test_another_retrain_trains_with_its_own_seed_and_rows_are_shares_of_retrain(
    world, tmp_path, monkeypatch
):
    reference = tmp_path / "retrain"  # Retrain with the parent's own seed
    erase(EraseRequest(world.model_dir, world.data_dir, "Horror", "retrain", reference))
    retain = {"retrain": 0.04, "retrain-seed7": 0.05, "deep": 0.036}  # model folder name -> retain NDCG@10

    def fake_evaluate(model, data, concept, config, device):
        return {"headline": {"retain_ndcg@10": retain[model.name], "exposure@10": 0.0}}, None

    monkeypatch.setattr(retrain_noise, "evaluate_erasure", fake_evaluate)
    out = tmp_path / "noise"
    argv = ["retrain_noise.py", "--parent", str(world.model_dir), "--data", str(world.data_dir),
            "--concept", "Horror", "--retrain", str(reference), "--seeds", "7",
            "--compare", f"deep={tmp_path / 'deep'}", "--out", str(out)]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    retrain_noise.main()
    parent_seed = read_json(world.model_dir / "config.json")["train_config"]["train"]["seed"]
    assert read_json(out / "retrain-seed7" / "manifest.json")["summary"]["train_seed"] == 7 != parent_seed
    weights = load_file(out / "retrain-seed7" / "model.safetensors")
    ours = load_file(reference / "model.safetensors")
    assert any(not weights[name].equal(ours[name]) for name in ours)  # Retrain is deterministic per seed
    rows = {(r["model"], r["split"]): r for r in read_json(out / "noise.json")["rows"]}
    assert set(rows) == {(m, s) for m in ("retrain", "retrain2", "deep") for s in ("valid", "test")}
    deep = rows["deep", "test"]
    assert deep["of_retrain"] == pytest.approx(0.036 / 0.04) and deep["of_retrain_mean"] == pytest.approx(0.8)
    assert deep["retrains_mean"] == pytest.approx(0.045)


def test_the_pool_averages_each_models_shares_over_folders_with_their_range(tmp_path):
    folders = []
    for name, (retain, retrain, mean) in {"a": (1.0, 1.0, 1.0 / 0.9), "b": (1.2, 1.0, 1.2)}.items():
        row = {"model": "deep", "split": "test", "retain_ndcg@10": retain, "retrains_mean": mean,
               "of_retrain": retain / retrain, "of_retrain_mean": retain / mean}  # fmt: skip
        write_json(tmp_path / name / "noise.json", {"rows": [row]})
        folders.append(tmp_path / name)
    table = retrain_noise_pool.pooled(folders)
    row = table.iloc[0]
    assert (row.folders, row.of_retrain_min, row.of_retrain_max) == (2, 1.0, 1.2)
    assert row.of_retrain == pytest.approx(1.1) and row.of_mean == pytest.approx(0.95)
    assert row.goal == "open (misses at the mean)"  # 90% and 100% of the mean: the interval spans 97%
    assert row.of_mean_half == pytest.approx(12.7062 * 0.05)  # t(0.975, 1) x std 0.0707 / sqrt(2)
    assert (
        "| test | deep | 2 | 110.0% (100.0-120.0) | 95.0% ± 63.5 (90.0-100.0) | open (misses at the mean) |"
        in (retrain_noise_pool.markdown(table))
    )


def test_the_pool_calls_the_retain_goal_missed_when_the_interval_lies_under_97_percent(tmp_path):
    folders = []
    for name, retain in {"a": 0.90, "b": 0.91, "c": 0.92}.items():  # each a share of a Retrains' mean of 1
        row = {"model": "deep", "split": "valid", "retain_ndcg@10": retain, "retrains_mean": 1.0,
               "of_retrain": retain, "of_retrain_mean": retain}  # fmt: skip
        write_json(tmp_path / name / "noise.json", {"rows": [row]})
        folders.append(tmp_path / name)
    assert retrain_noise_pool.pooled(folders).iloc[0].goal == "missed"
    for folder in folders:  # the same scores against a Retrains' mean of 0.9: 100% to 102%
        noise = read_json(folder / "noise.json")
        noise["rows"][0]["retrains_mean"] = 0.9
        write_json(folder / "noise.json", noise)
    assert retrain_noise_pool.pooled(folders).iloc[0].goal == "met"


def test_retrain_pairs_count_each_ordered_pair_of_one_parents_retrains(tmp_path):
    retrains = {
        "a": {"retrain": 1.0, "retrain2": 0.96, "retrain3": 1.0},
        "b": {"retrain": 1.0, "retrain2": 1.0},
    }
    for name, scores in retrains.items():
        rows = [
            {"model": m, "split": "valid", "retain_ndcg@10": v, "retrains_mean": 1} for m, v in scores.items()
        ]
        rows.append(
            {"model": "deep", "split": "valid", "retain_ndcg@10": 0.5, "retrains_mean": 1}
        )  # never paired
        write_json(tmp_path / name / "noise.json", {"rows": rows})
    folders = [tmp_path / "a", tmp_path / "b"]
    assert retrain_noise_pool.retrain_pairs_below(folders, 0.97) == {"valid": (2, 8)}
    assert retrain_noise_pool.retrain_pairs_below(folders, 0.95) == {"valid": (0, 8)}


def test_the_retrains_variation_is_the_root_mean_square_of_each_parents_std_over_mean(tmp_path):
    retrains = {"a": (0.9, 1.1), "b": (2.0, 2.0, 2.0)}  # std/mean: sqrt(0.02) and 0
    for name, values in retrains.items():
        rows = [
            {"model": f"retrain{i}", "split": "test", "retain_ndcg@10": v, "retrains_mean": 2}
            for i, v in enumerate(values)
        ]
        rows.append(
            {"model": "deep", "split": "test", "retain_ndcg@10": 5.0, "retrains_mean": 2}
        )  # not a Retrain
        write_json(tmp_path / name / "noise.json", {"rows": rows})
    variation = retrain_noise_pool.retrain_variation([tmp_path / "a", tmp_path / "b"])
    assert variation == {"test": pytest.approx(0.1)}  # sqrt((0.02 + 0) / 2)


def test_the_pool_exits_with_one_line_on_a_missing_or_outdated_noise_file(tmp_path):
    with pytest.raises(SystemExit, match="not found: run benchmarks/retrain_noise.py"):
        retrain_noise_pool.pooled([tmp_path / "absent"])
    write_json(
        tmp_path / "old" / "noise.json",
        {"rows": [{"model": "retrain", "split": "valid", "retain_ndcg@10": 1}]},
    )
    with pytest.raises(SystemExit, match="predates retrains_mean"):
        retrain_noise_pool.retrain_variation([tmp_path / "old"])
