"""Training: batches cover every target once, resume == uninterrupted, loss goes down, state round-trips."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.helpers.resume import assert_resume_is_bit_identical
from tracer.data.artifact import load_dataset
from tracer.data.sequences import build_sequences
from tracer.errors import UserError
from tracer.io import read_json
from tracer.model.checkpoint import load_model, state_dict_sha256
from tracer.semantic_ids.sid_table import SidTable
from tracer.training.batches import TargetBatch, TrainingExamples
from tracer.training.checkpointing import TrainingProgress, load_training_state, save_training_state
from tracer.training.config import TrainConfig, load_preset, preset_names
from tracer.training.loop import build_model, learning_rate, make_optimizer, train, weight_average

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def sequences(tiny_inputs):
    return build_sequences(load_dataset(tiny_inputs[0]))


def tiny_config(**changes) -> TrainConfig:
    return load_preset("tiny").replace(**changes)


# ------------------------------------------------------------------------------------------------
# Batches
# ------------------------------------------------------------------------------------------------
def scored_pairs(examples: TrainingExamples, batch) -> list[tuple[int, ...]]:
    """(item, history...) of every scored target in a batch, histories without padding."""
    pairs = []
    if isinstance(batch, TargetBatch):
        for history, target in zip(batch.histories.tolist(), batch.targets.tolist(), strict=True):
            pairs.append((target, *[h for h in history if h >= 0]))
        return pairs
    for row, mask in zip(batch.sequences.tolist(), batch.loss_mask.tolist(), strict=True):
        for t, scored in enumerate(mask):
            if scored:
                pairs.append((row[t], *[h for h in row[:t] if h >= 0]))
    return pairs


def expected_pairs(sequences, max_history: int, kind: str, mask=None) -> list[tuple[int, ...]]:
    """(item, context...) of every training target: the last max_history items for ``target``; for
    ``sequence`` the items since the start of its window (windows of max_history targets cut from the end)."""
    users, positions = sequences.training_targets()
    keep = np.ones(len(users), dtype=bool) if mask is None else mask
    pairs = []
    for user, position in zip(users[keep], positions[keep], strict=True):
        seq = sequences.train_sequences[user].tolist()
        if kind == "target":
            start = position - max_history
        else:
            window = (len(seq) - 1 - position) // max_history
            start = len(seq) - window * max_history - max_history - 1
        pairs.append((seq[position], *seq[max(0, start) : position]))
    return pairs


@pytest.mark.parametrize("kind", ["target", "sequence"])
def test_one_epoch_scores_every_training_target_once(sequences, kind):
    examples = TrainingExamples(sequences, kind, max_history=4)
    assert examples.n_targets == len(sequences.training_targets()[0])
    seen = []
    for step in examples.epoch_steps(batch_size=7, seed=3, epoch=0):
        assert step.global_targets == step.batch.n_targets
        seen += scored_pairs(examples, step.batch)
    assert sorted(seen) == sorted(expected_pairs(sequences, 4, kind))


@pytest.mark.parametrize("kind", ["target", "sequence"])
def test_target_mask_restricts_batches_to_masked_targets(sequences, kind):
    items = sequences.training_target_items()
    forget = items % 2 == 0
    examples = TrainingExamples(sequences, kind, max_history=4, target_mask=forget)
    assert examples.n_targets == int(forget.sum())
    scored = []
    for step in examples.epoch_steps(batch_size=8, seed=0, epoch=1):
        scored += scored_pairs(examples, step.batch)
    assert sorted(scored) == sorted(expected_pairs(sequences, 4, kind, mask=forget))


@pytest.mark.parametrize("kind", ["target", "sequence"])
def test_rows_per_epoch_draws_distinct_rows_afresh_each_epoch(sequences, kind):
    full = TrainingExamples(sequences, kind, max_history=4)
    drawn = TrainingExamples(sequences, kind, max_history=4, rows_per_epoch=5)
    assert full.n_rows > 5 and drawn.epoch_rows == 5 and drawn.steps_per_epoch(2) == 3
    epochs = []
    for epoch in range(4):
        rows = drawn.epoch_order(seed=0, epoch=epoch)
        assert len(set(rows.tolist())) == 5 and rows.max() < full.n_rows
        assert rows.tolist() == full.epoch_order(seed=0, epoch=epoch)[:5].tolist()  # same seeded draw
        scored = []
        for step in drawn.epoch_steps(batch_size=2, seed=0, epoch=epoch):
            scored += scored_pairs(drawn, step.batch)
        assert sorted(scored) == sorted(scored_pairs(full, full.batch(rows)))
        epochs.append(sorted(rows.tolist()))
    assert len({tuple(rows) for rows in epochs}) > 1  # a fresh draw, not the same subset every epoch
    assert TrainingExamples(sequences, kind, max_history=4, rows_per_epoch=10**6).epoch_rows == full.n_rows


@pytest.mark.parametrize("kind", ["target", "sequence"])
def test_rank_shards_partition_each_step(sequences, kind):
    examples = TrainingExamples(sequences, kind, max_history=4)
    single = list(examples.epoch_steps(batch_size=6, seed=1, epoch=2))
    ranks = [list(examples.epoch_steps(batch_size=6, seed=1, epoch=2, rank=r, world_size=2)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == examples.steps_per_epoch(6, 2)
    for one, a, b in zip(single, *ranks, strict=True):
        assert a.global_targets == b.global_targets == a.batch.n_targets + b.batch.n_targets
        assert a.global_targets <= one.global_targets
    assert examples.epoch_order(1, 2).tolist() != examples.epoch_order(1, 3).tolist()


# ------------------------------------------------------------------------------------------------
# Schedule, optimiser, state
# ------------------------------------------------------------------------------------------------
def test_learning_rate_warms_up_then_decays_to_floor():
    config = TrainConfig(lr=1.0, warmup_steps=4, min_lr_ratio=0.1)
    rates = [learning_rate(config, step, total_steps=20) for step in range(21)]
    assert rates[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert rates[4] == pytest.approx(1.0)
    assert rates[12] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert rates[20] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(rates[4:], rates[5:], strict=False))


def test_weight_decay_only_on_matrices(tiny_inputs):
    model = build_model(tiny_config(), SidTable.load(tiny_inputs[1]))
    optimizer = make_optimizer(model, tiny_config(weight_decay=0.3))
    for group in optimizer.param_groups:
        assert all((p.dim() >= 2) == (group["weight_decay"] == 0.3) for p in group["params"])
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))


def test_training_state_round_trips(tiny_inputs, sequences, tmp_path):
    config = tiny_config()
    sid_table = SidTable.load(tiny_inputs[1])
    model = build_model(config, sid_table)
    optimizer = make_optimizer(model, config)
    batch = TrainingExamples(sequences, model.batch_kind, 8).batch(np.arange(5))
    batch.target_nll(model).mean().backward()
    optimizer.step()
    progress = TrainingProgress(epoch=2, global_step=7, best_metric=0.5, best_epoch=1, log=[{"epoch": 1}])
    save_training_state(tmp_path, model, optimizer, progress)
    restored = build_model(config.replace(seed=99), sid_table)
    restored_optimizer = make_optimizer(restored, config)
    assert load_training_state(tmp_path, restored, restored_optimizer) == progress
    assert state_dict_sha256(restored) == state_dict_sha256(model)
    original, loaded = optimizer.state_dict(), restored_optimizer.state_dict()
    assert original["param_groups"] == loaded["param_groups"]
    for index, slots in original["state"].items():
        for name, value in slots.items():
            assert torch.equal(value, loaded["state"][index][name])


# ------------------------------------------------------------------------------------------------
# The loop
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("backbone", "ema_decay"), [("causal", None), ("tiger", None), ("causal", 0.9)])
def test_resume_equals_uninterrupted_run(tiny_inputs, tmp_path, backbone, ema_decay):
    config = tiny_config(backbone=backbone, max_epochs=3, patience=5, batch_size=32, ema_decay=ema_decay)
    whole, resumed = assert_resume_is_bit_identical(config, tiny_inputs, tmp_path)
    assert state_dict_sha256(load_model(tmp_path / "whole")) == state_dict_sha256(
        load_model(tmp_path / "split")
    )
    assert resumed["test"] == whole["test"]


def test_weight_average_is_the_exponential_average_of_the_steps_and_is_what_gets_kept(tiny_inputs, tmp_path):
    """With ema_decay the kept model is decay-weighted over the steps; the raw weights are in state/."""
    decay = 0.7
    config = tiny_config(max_epochs=1, patience=1, batch_size=32, ema_decay=decay)
    model = build_model(config, SidTable.load(tiny_inputs[1]))
    averaged = weight_average(model, config)
    expected = None
    for _ in range(3):  # stand-in steps: new weights, then the update the loop makes
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(torch.randn_like(parameter))
        averaged.update_parameters(model)
        current = [p.detach().clone() for p in model.parameters()]
        expected = (
            current if expected is None else [decay * e + (1 - decay) * c for e, c in zip(expected, current)]
        )
    for got, want in zip(averaged.module.parameters(), expected, strict=True):
        torch.testing.assert_close(got, want)
    assert weight_average(model, dataclasses.replace(config, ema_decay=None)) is None

    train(config, *tiny_inputs, tmp_path / "run", show_progress=False)
    state = load_file(str(tmp_path / "run" / "state" / "epoch-0001.safetensors"))
    kept = load_model(tmp_path / "run").state_dict()
    for name, value in kept.items():
        assert torch.equal(value, state[f"averaged.module.{name}"])
    raw_differs = [not torch.equal(value, state[f"model.{name}"]) for name, value in kept.items()]
    assert any(raw_differs)


def test_ema_decay_outside_the_unit_interval_is_a_user_error():
    with pytest.raises(UserError, match="ema_decay"):
        tiny_config(ema_decay=1.0).validate()


def test_training_lowers_the_loss(tiny_inputs, tmp_path):
    summary = train(
        tiny_config(max_epochs=4, patience=4), *tiny_inputs, tmp_path / "run", show_progress=False
    )
    log = read_json(tmp_path / "run" / "train_log.json")
    assert len(log) == summary["epochs"] == 4
    assert log[-1]["loss"] < 0.8 * log[0]["loss"]
    # a trained model beats chance: 10 of 24 items in the top 10 -> Recall@10 of 10/24 at random
    assert summary["valid"]["all"]["recall@10"] > 10 / 24
    assert read_json(tmp_path / "run" / "metrics.json")["test"] == summary["test"]


def test_rows_per_epoch_bounds_every_epoch_of_a_run(tiny_inputs, sequences, tmp_path):
    config = tiny_config(backbone="tiger", max_epochs=2, patience=2, batch_size=8, rows_per_epoch=20)
    assert len(sequences.training_targets()[0]) > 20
    train(config, *tiny_inputs, tmp_path / "run", show_progress=False)
    assert [entry["targets"] for entry in read_json(tmp_path / "run" / "train_log.json")] == [20, 20]


def test_early_stopping_keeps_the_best_epoch(tiny_inputs, tmp_path):
    # a learning rate of ~0 never changes the ranking, so no epoch after the first improves
    summary = train(
        tiny_config(lr=1e-12, max_epochs=10, patience=2), *tiny_inputs, tmp_path / "run", show_progress=False
    )
    assert summary["epochs"] == 3 and summary["best_epoch"] == 1 and summary["stopped_early"]
    assert read_json(tmp_path / "run" / "config.json")["best_epoch"] == 1


def test_existing_out_dir_and_changed_config_are_refused(tiny_inputs, tmp_path):
    config = tiny_config(max_epochs=1)
    train(config, *tiny_inputs, tmp_path / "run", show_progress=False)
    with pytest.raises(UserError, match="already exists"):
        train(config, *tiny_inputs, tmp_path / "run", show_progress=False)
    with pytest.raises(UserError, match=r"another config \(train\.lr differ"):
        train(config.replace(lr=0.5), *tiny_inputs, tmp_path / "run", resume=True, show_progress=False)
    again = train(config, *tiny_inputs, tmp_path / "run", overwrite=True, show_progress=False)
    assert again["epochs"] == 1


# ------------------------------------------------------------------------------------------------
# Presets
# ------------------------------------------------------------------------------------------------
def test_presets_load_and_round_trip(tmp_path):
    names = {"ml-100k", "ml-100k-deep", "ml-1m", "ml-1m-wide", "ml-1m-deep", "ml-100k-tiger", "ml-1m-tiger"}
    names |= {"amazon-beauty", "tiny", "ml-1m-deep-h200", "ml-100k-deep-h200", "synthetic-scale"}
    assert names <= set(preset_names())
    for name in names:
        config = load_preset(name)
        config.save(tmp_path / f"{name}.yaml")
        assert load_preset(tmp_path / f"{name}.yaml") == config
    assert load_preset("ml-1m-deep-h200").max_history == 200
    long, short = load_preset("ml-100k-deep-h200"), load_preset("ml-100k-deep")
    assert (long.max_history, short.max_history) == (200, 50)
    assert long.replace(max_history=50) == short  # the same recipe over longer histories, nothing else


def test_bad_presets_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="ml-100k"):
        load_preset("no-such-preset")
    bad = tmp_path / "bad.yaml"
    bad.write_text("backbone: causal\ntrain:\n  learning_rate: 0.1\n")
    with pytest.raises(UserError, match="unknown train key"):
        load_preset(bad)
    bad.write_text("backbone: rnn\n")
    with pytest.raises(UserError, match="unknown backbone"):
        load_preset(bad)
    bad.write_text("backbone: causal\ntrain:\n  rows_per_epoch: 0\n")
    with pytest.raises(UserError, match="rows_per_epoch"):
        load_preset(bad)
