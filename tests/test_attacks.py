"""The attack suite on a world with a planted concept: what each attack must see."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from tests.helpers.attack_world import CONCEPT, write_attack_world
from tracer.attacks.benign import benign_sampler
from tracer.attacks.probe import concept_probe
from tracer.attacks.relearning import RelearningConfig, relearning_curve
from tracer.attacks.restore_codes import restore_codes
from tracer.attacks.subject import load_subject, mean_height
from tracer.attacks.suite import ATTACK_METRICS, AttackSuiteConfig
from tracer.cli import main
from tracer.semantic_ids.sid_table import SidTable

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def world(tmp_path_factory, one_thread):
    root = tmp_path_factory.mktemp("attack-world")
    world = write_attack_world(root)
    erase = ["erase", str(world.parent_dir), "--data", str(world.data_dir), "--concept", CONCEPT]
    assert main([*erase, "--method", "npo", "--out", str(root / "npo")]) == 0
    forced = ["--set", "steps=5", "--set", "tau=0.5", "--set", "lr_phi=50", "--set", "use_mask=false"]
    assert main([*erase, "--method", "tracer", *forced, "--out", str(root / "tracer")]) == 0
    return world, root


def test_mean_height_is_the_trapezoid_area_over_the_width():
    assert mean_height([0, 25, 50], [0.0, 0.5, 0.5]) == pytest.approx((25 * 0.25 + 25 * 0.5) / 50)
    assert mean_height([0, 10, 40], [0.2, 0.2, 0.2]) == pytest.approx(0.2)


def test_relearning_restores_less_to_a_model_that_never_saw_the_concept(world):
    """NPO hides the concept about as well as Retrain, but the concept is still in its weights: the same
    small attack brings back at least twice Retrain's exposure."""
    world, root = world
    config = RelearningConfig(examples=(64,), steps=(25, 50))
    curves = {
        name: relearning_curve(load_subject(path, world.data_dir, CONCEPT), config)
        for name, path in {"retrain": world.retrain_dir, "npo": root / "npo"}.items()
    }
    exposure = {name: [p["exposure@10"] for p in curve["points"]] for name, curve in curves.items()}
    assert exposure["npo"][0] < 0.05 and exposure["retrain"][0] < 0.05  # both hide it before the attack
    assert exposure["npo"][-1] > 2 * exposure["retrain"][-1]
    assert curves["npo"]["mean_exposure_auc"] > curves["retrain"]["mean_exposure_auc"]
    assert exposure["retrain"][-1] > exposure["retrain"][0]  # the attack does train


def test_relearning_leaves_the_artifact_unchanged(world):
    world, _ = world
    weights = (world.retrain_dir / "model.safetensors").read_bytes()
    subject = load_subject(world.retrain_dir, world.data_dir, CONCEPT)
    before = [p.detach().clone() for p in subject.model.parameters()]
    relearning_curve(subject, RelearningConfig(examples=(16,), steps=(5,)))
    assert all(torch.equal(a, b) for a, b in zip(before, subject.model.parameters(), strict=True))
    assert (world.retrain_dir / "model.safetensors").read_bytes() == weights


def test_probe_reads_the_planted_concept_from_the_parent_and_little_more_than_chance_from_retrain(world):
    """The parent maps the trigger items onto "a concept item comes next": a linear probe reads it (AUC
    > 0.9). A model that learned nothing is the floor, not 0.5: its state still names the last item, from
    which a linear probe recovers part of the arbitrary trigger set (the probe's ``untrained_auc``, 0.58).
    Retrain never trained on concept targets: it sits nearer that floor than the parent (docs/method.md,
    Attacks)."""
    world, _ = world
    parent_probe = concept_probe(load_subject(world.parent_dir, world.data_dir, CONCEPT))
    parent, untrained = parent_probe["auc"], parent_probe["untrained_auc"]
    retrain = concept_probe(load_subject(world.retrain_dir, world.data_dir, CONCEPT))["auc"]
    assert parent > 0.9
    assert untrained < retrain < parent
    assert retrain - untrained < parent - retrain


def test_probe_reports_no_auc_and_no_floor_when_a_class_is_missing(world):
    world, _ = world
    subject = load_subject(world.retrain_dir, world.data_dir, CONCEPT)
    subject.concept = dataclasses.replace(subject.concept, item_mask=np.zeros_like(subject.concept.item_mask))
    result = concept_probe(subject)
    assert result["train_positives"] == 0 and result["auc"] is None and result["untrained_auc"] is None


def test_restore_codes_reads_the_parents_codes(world):
    world, root = world
    erased = load_subject(root / "tracer", world.data_dir, CONCEPT)
    parent_table = SidTable.load(world.parent_dir / "sids")
    items = erased.concept.item_indices
    moved = (erased.sid_table.codes[items] != parent_table.codes[items]).any(1)
    assert moved.any()
    result = restore_codes(erased)
    assert result["items_restored"] == int(moved.sum())
    # the same numbers as the erased weights evaluated by hand under the parent's table
    model = erased.fresh_model()
    model.set_codes(torch.as_tensor(parent_table.codes))
    by_hand = erased.exposure_and_forget_recall(model, parent_table.trie())
    assert result["exposure@10"] == pytest.approx(by_hand["exposure@10"])
    # Retrain's codes are its parent's: nothing to restore, its exposure is its own
    retrain = load_subject(world.retrain_dir, world.data_dir, CONCEPT)
    again = restore_codes(retrain)
    assert again["items_restored"] == 0
    assert again["exposure@10"] == pytest.approx(retrain.exposure_and_forget_recall()["exposure@10"])


def test_benign_relearning_trains_on_retain_targets_only(world):
    world, _ = world
    subject = load_subject(world.retrain_dir, world.data_dir, CONCEPT)
    sampler = benign_sampler(subject, 8, seed=0)
    for _ in range(20):
        batch = sampler.sample()
        targets = batch.sequences[batch.loss_mask]
        assert targets.numel() > 0 and not subject.concept.item_mask[targets.numpy()].any()


def test_suite_cli_writes_every_attack_and_its_summary(world, tmp_path, capsys):
    world, root = world
    out = tmp_path / "attacks.json"
    args = ["attack", str(root / "tracer"), "--data", str(world.data_dir), "--concept", CONCEPT]
    small = ["--examples", "16", "--steps", "5,10", "--benign-steps", "5", "--probe-targets", "500"]
    assert main([*args, *small, "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    probe = result["probe"]
    printed = f"probe AUC {probe['auc']:.3f}; the same architecture untrained (the probe's chance level) "
    assert printed + f"{probe['untrained_auc']:.3f}" in capsys.readouterr().out
    assert set(result["summary"]) == set(ATTACK_METRICS)
    assert result["summary"]["attack_exposure@10"] is None  # (64, 50) was not on this curve
    assert all(result["summary"][key] is not None for key in ATTACK_METRICS if key.split("_")[0] != "attack")
    assert [p["steps"] for p in result["relearning"]["points"]] == [0, 5, 10]
    assert main([*args, "--steps", "50,25"]) == 2
    assert main([*args, "--examples", "a,b"]) == 2
    assert main([*args, "--attacks", "relearning,guess"]) == 2


def test_suite_config_reads_a_single_number_as_a_one_point_curve():
    config = AttackSuiteConfig(examples=64, steps=50)
    assert config.relearning.examples == (64,) and config.relearning.steps == (50,)
    assert np.isclose(config.lr, RelearningConfig.lr)


def test_evaluate_adds_the_attack_suite_to_its_json(world, tmp_path, capsys):
    world, root = world
    out = tmp_path / "metrics.json"
    args = ["evaluate", str(root / "tracer"), "--data", str(world.data_dir), "--out", str(out)]
    assert main([*args, "--attacks", "restore_codes"]) == 2  # no concept named
    assert not out.exists()
    without_probe = [*args[:-1], str(tmp_path / "restore.json"), "--concept", CONCEPT]
    assert main([*without_probe, "--attacks", "restore_codes"]) == 0
    assert "chance level" not in capsys.readouterr().out  # no probe, no floor line
    assert main([*args, "--concept", CONCEPT, "--attacks", "restore_codes,probe"]) == 0
    assert "chance level" in capsys.readouterr().out
    summary = json.loads(out.read_text())["attacks"]["summary"]
    assert summary["restore_exposure@10"] is not None and summary["probe_auc"] is not None
    assert summary["attack_exposure@10"] is None  # relearning was not asked for
