"""A Retrain whose early stop ended its training before its parent peaked is a weak reference: the
manifest records both schedules and `tracer erase` warns (tests/test_bench.py: `tracer bench` carries
the warning into results.json)."""

from __future__ import annotations

import shutil

import pytest

from tracer.cli import main
from tracer.io import read_json, write_json
from tracer.training.config import TrainConfig
from tracer.unlearning import retrain as retrain_module
from tracer.unlearning.retrain import schedule_warning

pytestmark = pytest.mark.usefixtures("one_thread")


def schedule(epochs: int, best: int, stopped: bool) -> dict:
    return {"epochs": epochs, "best_epoch": best, "stopped_early": stopped}


def test_a_retrain_stopped_before_its_parent_peaked_is_flagged():
    warning = schedule_warning(schedule(5, 3, True), schedule(10, 9, False))
    assert warning is not None
    assert "epoch 5 (best epoch 3)" in warning and "parent's best epoch 9" in warning
    assert "patience" in warning  # the fix


@pytest.mark.parametrize(
    ("retrain", "parent"),
    [
        (schedule(10, 9, False), schedule(10, 9, False)),  # the full schedule
        (schedule(5, 3, False), schedule(10, 9, False)),  # ran out of epochs, no early stop
        (schedule(9, 7, True), schedule(10, 9, False)),  # stopped at the parent's best epoch
        (schedule(6, 4, True), schedule(6, 4, True)),  # the parent stopped there too
        (schedule(5, 3, True), None),  # the parent has no record
    ],
)
def test_no_warning_when_the_schedule_is_not_cut_short(retrain, parent):
    assert schedule_warning(retrain, parent) is None


@pytest.fixture()
def parent_with_record(world, tmp_path):
    """A copy of the world's parent whose metrics.json says it peaked at epoch 6 of 6."""
    parent = tmp_path / "parent"
    shutil.copytree(world.model_dir, parent)
    write_json(parent / "metrics.json", {**schedule(6, 6, False), "best_valid_ndcg@10": 0.1})
    return parent


def erase_retrain(world, parent, out) -> int:
    return main(["erase", str(parent), "--data", str(world.data_dir), "--concept", "Horror",
                 "--method", "retrain", "--out", str(out)])  # fmt: skip


def test_the_manifest_records_the_schedule_and_no_warning_for_a_full_one(world, parent_with_record, tmp_path):
    out = tmp_path / "retrain"
    assert erase_retrain(world, parent_with_record, out) == 0
    summary = read_json(out / "manifest.json")["summary"]
    assert summary["training"] == schedule(2, summary["training"]["best_epoch"], False)  # the tiny preset's 2
    assert "warning" not in summary


def test_erase_warns_when_retrain_stops_before_its_parent_peaked(
    world, parent_with_record, tmp_path, monkeypatch, capsys
):
    real_train = retrain_module.train

    def train_stopped_early(*args, **kwargs):
        return {**real_train(*args, **kwargs), "stopped_early": True}

    monkeypatch.setattr(retrain_module, "train", train_stopped_early)
    out = tmp_path / "retrain"
    assert erase_retrain(world, parent_with_record, out) == 0
    summary = read_json(out / "manifest.json")["summary"]
    assert summary["training"]["stopped_early"] is True
    assert "before its parent's best epoch 6" in summary["warning"]
    assert f"warning: {summary['warning']}" in capsys.readouterr().err


def test_retrain_trains_with_the_parents_seed_unless_train_seed_names_another(world, tmp_path, monkeypatch):
    """The gold standard is the parent's own training run on D_r (docs/method.md §3); ``train_seed``
    draws another run of it, and the shared ``--seed`` does not change it."""
    parent_seed = TrainConfig.from_dict(read_json(world.model_dir / "config.json")["train_config"]).seed
    real_train = retrain_module.train
    seeds = []

    def recording_train(config, *args, **kwargs):
        seeds.append(config.seed)
        return real_train(config, *args, **kwargs)

    monkeypatch.setattr(retrain_module, "train", recording_train)
    runs = {"default": [], "other-seed": ["--seed", str(parent_seed + 5)],
            "train-seed": ["--set", f"train_seed={parent_seed + 7}"]}  # fmt: skip
    for name, flags in runs.items():
        args = ["erase", str(world.model_dir), "--data", str(world.data_dir), "--concept", "Horror",
                "--method", "retrain", "--out", str(tmp_path / name), *flags]  # fmt: skip
        assert main(args) == 0
    assert seeds == [parent_seed, parent_seed, parent_seed + 7]
    recorded = [read_json(tmp_path / name / "manifest.json")["summary"]["train_seed"] for name in runs]
    assert recorded == seeds
    weights = {name: (tmp_path / name / "model.safetensors").read_bytes() for name in runs}
    assert weights["default"] == weights["other-seed"] != weights["train-seed"]
