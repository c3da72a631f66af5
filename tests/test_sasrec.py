"""SASRec baseline: masking properties, windows, learning a pattern, checkpoints and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tests.helpers.sasrec_data import cyclic_data, tiny_settings
from tracer.cli import main
from tracer.data.sequences import SequenceData
from tracer.errors import UserError
from tracer.io import read_json, write_json
from tracer.model.base import PAD_ITEM
from tracer.model.sasrec import SASRec, SASRecConfig, left_pad, load_sasrec, save_sasrec
from tracer.training.sasrec_train import (
    SASRecSettings,
    rank_histories,
    train_sasrec,
    training_windows,
)

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_model(norm_first: bool = True, max_len: int = 12) -> SASRec:
    torch.manual_seed(0)
    config = SASRecConfig(
        n_items=25, hidden_size=16, n_heads=2, n_layers=2, max_len=max_len, norm_first=norm_first
    )
    return SASRec(config).eval()


@pytest.mark.parametrize("norm_first", [True, False])
def test_left_padding_does_not_change_outputs(norm_first: bool) -> None:
    model = tiny_model(norm_first)
    rng = np.random.default_rng(1)
    sequences = [rng.integers(0, 25, size=n) for n in (3, 7, 10)]
    tight = left_pad(sequences)  # (3, 10)
    padded = left_pad(sequences, 12)  # two extra PAD columns on every row
    with torch.no_grad():
        hidden_tight = model.hidden_states(tight)
        hidden_padded = model.hidden_states(padded)[:, 2:]
        alone = [model(torch.as_tensor(seq)[None])[0] for seq in sequences]
    real = tight != PAD_ITEM
    assert torch.allclose(hidden_tight[real], hidden_padded[real], atol=1e-5)
    assert torch.allclose(model(tight), torch.stack(alone), atol=1e-5)
    assert torch.all(hidden_tight[~real] == 0)


def test_causal_masking() -> None:
    model = tiny_model()
    history = torch.tensor([[4, 9, 1, 17, 3, 8, 22, 5]])
    changed_future = history.clone()
    changed_future[0, 5:] = torch.tensor([0, 2, 13])
    changed_past = history.clone()
    changed_past[0, 1] = 11
    with torch.no_grad():
        base = model.hidden_states(history)
        future = model.hidden_states(changed_future)
        past = model.hidden_states(changed_past)
    assert torch.allclose(base[0, :5], future[0, :5], atol=1e-6)  # positions <= 4 ignore items after them
    assert not torch.allclose(base[0, 5:], future[0, 5:], atol=1e-4)
    assert torch.allclose(base[0, :1], past[0, :1], atol=1e-6)
    assert not torch.allclose(base[0, 1:], past[0, 1:], atol=1e-4)  # every later position sees item 1


def test_windows_use_every_training_target_once() -> None:
    rng = np.random.default_rng(0)
    sequences = [rng.integers(0, 50, size=n) for n in (1, 2, 5, 9, 23)]
    inputs, targets = training_windows(sequences, max_len=4)
    real = targets != PAD_ITEM
    assert np.array_equal(real, inputs != PAD_ITEM)
    expected_targets = np.concatenate([seq[1:] for seq in sequences])
    assert sorted(targets[real].tolist()) == sorted(expected_targets.tolist())
    assert real.sum() == len(expected_targets)
    for window_in, window_out in zip(inputs, targets, strict=True):  # inputs are the targets shifted by one
        keep = window_out != PAD_ITEM
        assert np.array_equal(window_in[keep][1:], window_out[keep][:-1])


@pytest.mark.parametrize("loss", ["ce", "bce"])
def test_learns_a_next_item_pattern_without_excluding_seen_items(loss: str) -> None:
    data = cyclic_data()
    result = train_sasrec(data, tiny_settings(loss=loss), seed=0, device=torch.device("cpu"), progress=False)
    # chance level of NDCG@5 on 30 items is about 0.1; targets were all seen before (no filtering)
    assert result.valid["ndcg@5"] > 0.9
    assert result.test["recall@5"] > 0.9
    assert result.best_epoch == max(result.log, key=lambda row: row["ndcg@10"])["epoch"]
    assert result.test_ranked.shape == (data.n_users, 20)
    assert np.all(np.diff(result.test_scores, axis=1) <= 0)


@pytest.mark.parametrize(("min_epochs", "expected_epochs"), [(6, 6), (1, 3)])
def test_early_stopping_waits_for_patience_and_min_epochs(min_epochs: int, expected_epochs: int) -> None:
    data = cyclic_data(n_users=8)
    # lr so small that no weight changes: validation never improves after epoch 1
    settings = tiny_settings(lr=1e-12, patience=2, min_epochs=min_epochs, max_epochs=10)
    result = train_sasrec(data, settings, seed=0, device=torch.device("cpu"), progress=False)
    assert result.best_epoch == 1
    assert len(result.log) == expected_epochs


def test_same_seed_same_run() -> None:
    data = cyclic_data(n_users=16)
    runs = [
        train_sasrec(data, tiny_settings(max_epochs=3), seed=7, device=torch.device("cpu"), progress=False)
        for _ in range(2)
    ]
    assert [row["loss"] for row in runs[0].log] == [row["loss"] for row in runs[1].log]
    assert np.array_equal(runs[0].test_scores, runs[1].test_scores)


def test_saved_model_reloads_to_identical_scores(tmp_path: Path) -> None:
    model = tiny_model()
    save_sasrec(model, tmp_path, extra={"seed": 0})
    reloaded = load_sasrec(tmp_path)
    histories = [np.array([1, 2, 3]), np.array([7]), np.arange(20) % 25]
    assert np.array_equal(rank_histories(model, histories)[1], rank_histories(reloaded, histories)[1])
    assert reloaded.config == model.config


def test_config_file_holds_the_defaults_and_unknown_keys_fail(tmp_path: Path) -> None:
    assert SASRecSettings.from_yaml(REPO / "configs" / "sasrec.yaml").to_dict() == SASRecSettings().to_dict()
    assert SASRecSettings.from_yaml(REPO / "configs" / "sasrec-ml-1m-h200.yaml").model.max_len == 200
    with pytest.raises(UserError, match="hidden"):
        SASRecSettings.from_dict({"model": {"hidden": 64}})
    with pytest.raises(UserError, match="divisible"):
        SASRecSettings.from_dict({"model": {"hidden_size": 30, "n_heads": 4}})
    with pytest.raises(UserError, match="invalid"):
        SASRecSettings.from_dict({"train": {"loss": "hinge"}})
    assert SASRecSettings.from_dict({"train": {"lr": "3e-3"}}).train.lr == 3e-3  # YAML reads 1e-3 as text
    with pytest.raises(UserError, match="number"):
        SASRecSettings.from_dict({"model": {"max_len": "long"}})


def write_prepared_folder(root: Path, data: SequenceData) -> None:
    """A prepared dataset in the artifact layout (tracer.data.artifact) holding ``data``."""
    root.mkdir(parents=True)
    pd.DataFrame(
        {
            "item_id": data.item_ids,
            "title": [f"Item {i}" for i in data.item_ids],
            "text": [f"Item {i}" for i in data.item_ids],
            "concepts": [["odd" if n % 2 else "even"] for n in range(data.n_items)],
        }
    ).to_parquet(root / "items.parquet", index=False)
    rows = []
    for user, seq, valid, test in zip(
        data.user_ids, data.train_sequences, data.valid_targets, data.test_targets, strict=True
    ):
        items = [*seq, valid, test]
        splits = ["train"] * len(seq) + ["valid", "test"]
        rows += [(user, data.item_ids[i], t, s) for t, (i, s) in enumerate(zip(items, splits, strict=True))]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "split"])
    frame.to_parquet(root / "interactions.parquet", index=False)
    for split in ("valid", "test"):
        held = frame[frame["split"] == split][["user_id", "item_id"]]
        held.to_parquet(root / f"{split}.parquet", index=False)
    write_json(
        root / "manifest.json", {"n_users": data.n_users, "n_items": data.n_items, "source": "synthetic"}
    )


def test_cli_writes_the_run_folder_and_refuses_to_overwrite(tmp_path: Path, capsys) -> None:
    data = cyclic_data(n_users=12, n_items=25, length=10)
    prepared, out, config = tmp_path / "data", tmp_path / "run", tmp_path / "tiny.yaml"
    write_prepared_folder(prepared, data)
    config.write_text("model:\n  hidden_size: 16\n  max_len: 6\ntrain:\n  max_epochs: 2\n  batch_size: 8\n")
    args = ["sasrec", str(prepared), "--config", str(config), "--out", str(out), "--seed", "3"]

    assert main(args) == 0
    for name in ("model.safetensors", "config.json", "metrics.json", "train_log.json", "recs_test.parquet"):
        assert (out / name).is_file()
    metrics = read_json(out / "metrics.json")
    assert set(metrics["test"]) == {f"{m}@{k}" for m in ("recall", "ndcg") for k in (5, 10, 20)}
    assert len(read_json(out / "train_log.json")) == metrics["epochs_run"] <= 2
    recs = pd.read_parquet(out / "recs_test.parquet")
    assert list(recs.columns) == ["user_id", "rank", "item_id", "score"]
    assert len(recs) == data.n_users * 20
    assert set(recs["item_id"]) <= set(data.item_ids) and set(recs["user_id"]) == set(data.user_ids)
    assert recs.groupby("user_id")["rank"].apply(list).map(lambda r: r == list(range(1, 21))).all()
    hits = recs.merge(pd.read_parquet(prepared / "test.parquet"), on=["user_id", "item_id"])
    assert len(hits) / data.n_users == pytest.approx(metrics["test"]["recall@20"])
    assert read_json(out / "config.json")["seed"] == 3
    assert load_sasrec(out).config.max_len == 6

    before = (out / "model.safetensors").read_bytes()
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "model.safetensors").read_bytes() == before
    assert main([*args, "--overwrite"]) == 0
