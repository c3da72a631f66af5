"""Tuning (docs/method.md §5.1): every training method has the same number of trials (at least 12),
one rule picks among them on the validation split, and `tracer sweep` runs end to end."""

from __future__ import annotations

import pytest

import tracer.unlearning.sweep as sweep
from tracer.cli import main
from tracer.errors import UserError
from tracer.io import read_json, sha256_tree, write_json
from tracer.unlearning.sweep import EXPOSURE_MARGIN, SweepRequest, run_sweep, search_spaces, select_trial

pytestmark = pytest.mark.usefixtures("one_thread")

TRAINING_METHODS = {
    "finetune",
    "ga",
    "graddiff",
    "npo",
    "simnpo",
    "rmu",
    "tracer",
    "tracer-anchored",
    "tracer-paper",
}


def test_every_training_method_has_the_same_number_of_trials_and_at_least_12():
    trials, spaces = search_spaces()
    assert set(spaces) == TRAINING_METHODS and trials >= 12
    assert {method: len(sweep.trial_settings(grid)) for method, grid in spaces.items()} == dict.fromkeys(
        TRAINING_METHODS, trials
    )


def test_a_space_of_another_size_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "sweeps.yaml"
    path.write_text("trials: 4\nspaces:\n  ga: {lr: [1, 2], steps: [1, 2]}\n  npo: {lr: [1, 2, 3]}\n")
    monkeypatch.setattr(sweep, "SWEEPS_FILE", path)
    with pytest.raises(UserError, match=r"every space must have 4 trials; these do not: \{'npo': 3\}"):
        search_spaces()


def rows(*pairs):
    return [{"cell": f"t{i}", "retain_ndcg@10": r, "exposure@10": e} for i, (r, e) in enumerate(pairs)]


def test_the_rule_takes_the_best_retain_among_trials_within_the_margin_of_retrain():
    trials = rows((0.050, 0.0100), (0.040, 0.0020 + EXPOSURE_MARGIN), (0.045, 0.0026), (0.030, 0.0))
    assert select_trial(trials, retrain_exposure=0.0020)["cell"] == "t1"  # exactly at the bound qualifies
    assert select_trial(trials, retrain_exposure=0.0019)["cell"] == "t3"  # now only t3 does
    assert select_trial(trials, retrain_exposure=0.0100)["cell"] == "t0"  # all do: the best retain


def test_without_a_qualifying_trial_the_rule_takes_the_lowest_exposure_then_the_higher_retain():
    trials = rows((0.050, 0.0100), (0.030, 0.0040), (0.035, 0.0040), (0.060, 0.0090))
    assert select_trial(trials, retrain_exposure=0.0)["cell"] == "t2"
    with pytest.raises(UserError, match="no trial"):
        select_trial([], 0.0)


def test_the_sweep_selects_among_trials_on_validation_only(world, tmp_path, monkeypatch):
    """Hand-made metrics per cell: the default cell is the best but is no trial; every evaluation is on
    the validation split."""
    headline = {  # cell -> (retain NDCG@10, Exposure@10); Retrain's exposure is 0.001
        "default": (0.9, 0.0),
        "steps=1": (0.5, 0.0016),
        "steps=2": (0.4, 0.0010),
        "steps=3": (0.6, 0.0030),
        "retrain": (0.7, 0.0010),
        "model": (0.8, 0.05),
    }
    splits, erased = [], []

    def fake_evaluate(model_dir, data_dir, concept, config, device):
        splits.append(config.split)
        retain, exposure = headline[model_dir.name]
        metrics = {"retain_ndcg@10": retain, "exposure@10": exposure, "concept_mass": 0.0}
        return {"headline": metrics, "cost": {"seconds": 1.0}}, None

    def fake_erase(request):
        erased.append(request.out.name)
        request.out.mkdir(parents=True)
        parent = sha256_tree(request.model_dir)
        manifest = {
            "method": request.method,
            "concept": request.concept,
            "parent": "p",
            "parent_sha256": parent,
        }
        write_json(request.out / "manifest.json", manifest)

    monkeypatch.setattr(sweep, "evaluate_erasure", fake_evaluate)
    monkeypatch.setattr(sweep, "erase", fake_erase)
    request = SweepRequest(world.model_dir, world.data_dir, "Horror", "tracer-paper", tmp_path / "s",
                           grid={"steps": [1, 2, 3]})  # fmt: skip
    summary = run_sweep(request)
    assert summary["best"]["cell"] == "steps=2" and summary["trials"] == 3
    assert set(splits) == {"valid"} and summary["selected_on"] == "valid"
    assert sorted(erased) == ["default", "retrain", "steps=1", "steps=2", "steps=3"]
    assert run_sweep(request)["best"]["cell"] == "steps=2"  # resumed: nothing erased or evaluated again
    assert len(erased) == 5 and len(splits) == 6


def test_sweeps_sharing_a_references_folder_evaluate_parent_and_retrain_once(world, tmp_path, monkeypatch):
    evaluated = []

    def fake_evaluate(model_dir, data_dir, concept, config, device):
        evaluated.append(model_dir.name)
        return {"headline": {"retain_ndcg@10": 0.5, "exposure@10": 0.0, "concept_mass": 0.0},
                "cost": {"seconds": 1.0}}, None  # fmt: skip

    monkeypatch.setattr(sweep, "evaluate_erasure", fake_evaluate)
    monkeypatch.setattr(sweep, "_erased", lambda request, method, settings, folder: folder)
    monkeypatch.setattr(sweep, "_retrain", lambda request: tmp_path / "retrain")
    for method in ("ga", "npo"):
        run_sweep(SweepRequest(world.model_dir, world.data_dir, "Horror", method, tmp_path / method,
                               grid={"steps": [1]}, references_dir=tmp_path))  # fmt: skip
    cells = ["default", "steps=1"] * 2
    assert sorted(evaluated) == sorted([world.model_dir.name, "retrain", *cells])  # parent, Retrain once
    assert (tmp_path / "parent_valid_metrics.json").is_file()


def test_a_retrain_of_another_concept_is_refused(world, tmp_path, monkeypatch):
    folder = tmp_path / "retrain"
    folder.mkdir()
    write_json(folder / "manifest.json", {"method": "retrain", "concept": "Comedy", "parent": "p",
                                          "parent_sha256": sha256_tree(world.model_dir)})  # fmt: skip
    request = SweepRequest(world.model_dir, world.data_dir, "Horror", "tracer", tmp_path / "s",
                           grid={"steps": [1]}, retrain_dir=folder)  # fmt: skip
    monkeypatch.setattr(sweep, "evaluate_erasure", lambda *a: ({"headline": {}, "cost": {}}, None))
    with pytest.raises(UserError, match="is not Retrain of .* for 'Horror'"):
        run_sweep(request)


def test_tracer_sweep_runs_end_to_end(world, tmp_path, capsys):
    out = tmp_path / "sweep"
    args = ["sweep", str(world.model_dir), "--data", str(world.data_dir), "--concept", "Horror",
            "--method", "tracer-paper", "--out", str(out), "--grid", "steps=1,2"]  # fmt: skip
    assert main(args) == 0
    summary = read_json(out / "sweep.json")
    assert summary["method"] == "tracer-paper" and summary["trials"] == 2
    assert summary["best"]["cell"] in ("steps=1", "steps=2")
    assert read_json(out / "retrain" / "manifest.json")["method"] == "retrain"
    assert read_json(out / "steps=2" / "manifest.json")["config"]["retain_kl"] == 0.0
    assert "picked: {'steps'" in capsys.readouterr().out
