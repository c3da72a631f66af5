"""`tracer train/recommend/evaluate` end to end on tiny data: consistent outputs, clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.helpers.tiny_run_inputs import write_tiny_inputs
from tracer.cli import main
from tracer.data.artifact import load_dataset
from tracer.data.sequences import build_sequences
from tracer.evaluation.evaluate import metrics_from_rankings
from tracer.io import read_json

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    data, sids = write_tiny_inputs(folder)
    run = folder / "run"
    args = ["train", str(data), str(sids), "--preset", "tiny", "--out", str(run), "--max-epochs", "2"]
    assert main([*args, "--stop-after-epochs", "1"]) == 0
    assert not (run / "metrics.json").exists()
    assert main([*args, "--resume"]) == 0
    return folder, data, sids, run


def test_run_folder_layout(trained):
    _, _, _, run = trained
    expected = [
        "model.safetensors",
        "config.json",
        "sids/sids.parquet",
        "train_config.yaml",
        "train_log.json",
    ]
    for name in [*expected, "metrics.json", "state/state.json"]:
        assert (run / name).is_file(), name
    log = read_json(run / "train_log.json")
    assert [entry["epoch"] for entry in log] == [1, 2]
    assert all(entry["targets_per_second"] > 0 for entry in log)


def test_evaluate_matches_training_metrics_and_saved_rankings(trained):
    folder, data, _, run = trained
    out, rankings = folder / "metrics.json", folder / "rankings.parquet"
    assert main(["evaluate", str(run), "--data", str(data), "--concept", "even", "--out", str(out),
                 "--rankings", str(rankings)]) == 0  # fmt: skip
    result = read_json(out)
    assert result["all"] == pytest.approx(read_json(run / "metrics.json")["test"]["all"])
    sequences = build_sequences(load_dataset(data))
    even_targets = int(
        (np.array([int(i[1:]) for i in sequences.item_ids])[sequences.test_targets] % 2 == 0).sum()
    )
    assert result["forget"]["users"] == even_targets
    assert (
        result["retain"]["users"] + result["forget"]["users"] == result["all"]["users"] == sequences.n_users
    )
    recomputed = metrics_from_rankings(rankings, data, "test", concept_spec="even")
    for group in ("all", "retain", "forget", "exposure", "exposure_fans"):
        assert recomputed[group] == pytest.approx(result[group])


def test_recommend_writes_ranked_catalogue_items(trained):
    folder, data, _, run = trained
    out = folder / "recs.parquet"
    assert (
        main(["recommend", str(run), "--data", str(data), "--split", "valid", "--k", "7", "--out", str(out)])
        == 0
    )
    recs = pd.read_parquet(out)
    assert list(recs.columns) == ["user_id", "rank", "item_id", "score"]
    sequences = build_sequences(load_dataset(data))
    assert recs["user_id"].nunique() == sequences.n_users and len(recs) == 7 * sequences.n_users
    assert set(recs["item_id"]) <= set(sequences.item_ids)
    for _, user in recs.groupby("user_id"):
        assert user["rank"].tolist() == list(range(1, 8))
        assert user["item_id"].is_unique
        assert (np.diff(user["score"].to_numpy()) <= 0).all()


def test_user_mistakes_exit_with_code_2(trained, tmp_path, capsys):
    folder, data, sids, run = trained
    other_data, other_sids = write_tiny_inputs(tmp_path, n_users=3, length=4)
    cases = [
        ["evaluate", str(tmp_path / "missing"), "--data", str(data), "--out", str(tmp_path / "m.json")],
        ["evaluate", str(run), "--data", str(other_data), "--out", str(tmp_path / "m.json")],
        [
            "recommend",
            str(run),
            "--data",
            str(data),
            "--split",
            "train",
            "--out",
            str(tmp_path / "r.parquet"),
        ],
        ["train", str(data), str(sids), "--preset", "tiny", "--out", str(run)],
        ["train", str(data), str(other_sids), "--preset", "tiny", "--out", str(tmp_path / "new")],
        ["train", str(data), str(sids), "--preset", "no-such", "--out", str(tmp_path / "new")],
    ]
    for args in cases:
        assert main(args) == 2, args
        assert capsys.readouterr().err.startswith("error: ")
    assert not (tmp_path / "m.json").exists() and not (tmp_path / "new").exists()
