"""Retrain with ``rebuild_sids`` (docs/method.md §3): collaborative SIDs are rebuilt without the forget
targets, and the erased artifact carries the rebuilt table and tokenizer state; text SIDs are kept."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers.erasure_world import SID_FLAGS, write_world
from tracer.attacks.restore_codes import REBUILT
from tracer.cli import main
from tracer.data.sequences import SequenceData
from tracer.io import read_json
from tracer.model.artifact import load_model_artifact
from tracer.semantic_ids.quantization import load_tokenization
from tracer.semantic_ids.sid_table import SidTable

pytestmark = pytest.mark.usefixtures("one_thread")

CONCEPT = "Horror"


def erase_args(world, out: Path, *settings: str) -> list[str]:
    args = ["erase", str(world.model_dir), "--data", str(world.data_dir), "--concept", CONCEPT,
            "--method", "retrain", "--out", str(out)]  # fmt: skip
    for setting in settings:
        args += ["--set", setting]
    return args


def file_hashes(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def drop_forget_interactions(data_dir: Path, out: Path) -> int:
    """Copy the prepared dataset to ``out`` without the interactions that are Horror's forget targets: a
    Horror item at a user's second or later training position (the first item of a training sequence
    is no target). Returns how many were dropped. Written from the files, apart from tracer's indexing."""
    shutil.copytree(data_dir, out)
    items = pd.read_parquet(out / "items.parquet")
    horror = set(items.loc[items["concepts"].map(lambda names: CONCEPT in list(names)), "item_id"])
    frame = pd.read_parquet(out / "interactions.parquet")
    train = frame[frame["split"] == "train"]
    later = train.groupby("user_id").cumcount() >= 1
    drop = frame.index.isin(train.index[later & train["item_id"].isin(horror)])
    frame[~drop].reset_index(drop=True).to_parquet(out / "interactions.parquet", index=False)
    return int(drop.sum())


@pytest.fixture(scope="module")
def cf_world(tmp_path_factory):
    return write_world(tmp_path_factory.mktemp("cf"), encoder="cf-seq")


@pytest.fixture(scope="module")
def rebuilt(cf_world, tmp_path_factory):
    """(erased folder, parent hashes before, parent hashes after) of Retrain with rebuild_sids=true."""
    out = tmp_path_factory.mktemp("rebuilt") / "erased"
    before = file_hashes(cf_world.model_dir)
    assert main(erase_args(cf_world, out, "rebuild_sids=true")) == 0
    return out, before, file_hashes(cf_world.model_dir)


@pytest.fixture(scope="module")
def expected(cf_world, tmp_path_factory):
    """(SID folder `tracer sids` writes on the data without the forget interactions, how many dropped)."""
    root = tmp_path_factory.mktemp("expected")
    dropped = drop_forget_interactions(cf_world.data_dir, root / "data")
    assert dropped > 0
    sids = root / "sids"
    assert main(["sids", str(root / "data"), "--out", str(sids), "--encoder", "cf-seq", *SID_FLAGS]) == 0
    return sids, dropped


def test_the_rebuilt_sids_are_the_sid_build_without_the_forget_interactions(cf_world, rebuilt, expected):
    out, _, _ = rebuilt
    expected_dir, dropped = expected
    model, table, _ = load_model_artifact(out)  # also checks that the model's codes are the table's
    want = SidTable.load(expected_dir)
    np.testing.assert_array_equal(table.codes, want.codes)
    assert table.dedup_capacity == want.dedup_capacity and model.vocab_sizes == want.vocab_sizes
    assert not np.array_equal(table.codes, cf_world.sid_table.codes)  # the forget interactions mattered
    summary = read_json(out / "manifest.json")["summary"]
    assert summary["sids_rebuilt"] is True and summary["interactions_dropped"] == dropped
    assert summary["items_with_new_sids"] == int((table.codes != cf_world.sid_table.codes).any(1).sum())


def test_the_artifact_carries_the_rebuilt_tokenizer_state(cf_world, rebuilt, expected):
    out, _, _ = rebuilt
    expected_dir, dropped = expected
    got, want = load_tokenization(out / "sids"), load_tokenization(expected_dir)
    for name in ("codes", "codebooks", "residuals"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
    vectors = np.load(out / "sids" / "item_vectors.npy")
    np.testing.assert_array_equal(vectors, np.load(expected_dir / "item_vectors.npy"))
    assert not np.array_equal(vectors, np.load(cf_world.model_dir / "sids" / "item_vectors.npy"))
    stats = read_json(out / "sids" / "stats.json")
    assert stats["encoder"] == "cf-seq"
    assert stats["without_forget_targets"] == {"concept": CONCEPT, "interactions_dropped": dropped}


def test_the_parent_folder_is_unchanged_byte_for_byte(rebuilt):
    _, before, after = rebuilt
    assert before and after == before


def test_the_attack_suite_skips_restore_codes_on_rebuilt_sids(cf_world, rebuilt):
    from tracer.attacks.suite import AttackSuiteConfig, run_attack_suite

    out, _, _ = rebuilt
    result = run_attack_suite(out, cf_world.data_dir, CONCEPT, AttackSuiteConfig(attacks=("restore_codes",)))
    assert result["restore_codes"] == {"skipped": REBUILT}
    assert result["summary"]["restore_exposure@10"] is None


def test_without_rebuild_sids_the_parent_table_and_tokenizer_state_are_kept(cf_world, tmp_path):
    out = tmp_path / "kept"
    assert main(erase_args(cf_world, out)) == 0  # rebuild_sids: false is the default
    _, table, _ = load_model_artifact(out)
    np.testing.assert_array_equal(table.codes, cf_world.sid_table.codes)
    parent = file_hashes(cf_world.model_dir / "sids")
    assert file_hashes(out / "sids") == parent
    summary = read_json(out / "manifest.json")["summary"]
    assert summary["sids_rebuilt"] is False and "rebuild_sids is false" in summary["sids_reason"]


def test_text_sids_are_kept_and_the_manifest_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACER_CACHE", str(tmp_path / "cache"))
    world = write_world(tmp_path / "text", encoder="use")
    out = tmp_path / "erased"
    assert main(erase_args(world, out, "rebuild_sids=true")) == 0
    _, table, _ = load_model_artifact(out)
    np.testing.assert_array_equal(table.codes, world.sid_table.codes)
    assert file_hashes(out / "sids") == file_hashes(world.model_dir / "sids")
    summary = read_json(out / "manifest.json")["summary"]
    assert summary["sids_rebuilt"] is False
    assert "text SIDs (encoder use) do not depend on interactions" in summary["sids_reason"]


def test_rebuild_without_a_record_of_the_sid_build_is_refused(world, tmp_path, capsys):
    # the planted world's SIDs carry no stats.json: nothing tells how to rebuild them
    out = tmp_path / "erased"
    assert main(erase_args(world, out, "rebuild_sids=true")) == 2
    error = capsys.readouterr().err.strip()
    assert "stats.json" in error and len(error.splitlines()) == 1
    assert not out.exists()


def test_without_targets_drops_exactly_the_flagged_training_targets():
    sequences = SequenceData(
        user_ids=np.array(["a", "b", "c"]),
        item_ids=np.arange(8).astype(str),
        train_sequences=[np.array([1, 2, 3]), np.array([4]), np.array([5, 6, 7])],
        valid_targets=np.array([0, 0, 0]),
        test_targets=np.array([1, 1, 1]),
    )
    # training targets, in order: (a, 1) = 2, (a, 2) = 3, (c, 1) = 6, (c, 2) = 7
    kept = sequences.without_targets(np.array([True, False, False, True]))
    assert [seq.tolist() for seq in kept.train_sequences] == [[1, 3], [4], [5, 6]]
    assert [seq.tolist() for seq in sequences.train_sequences] == [[1, 2, 3], [4], [5, 6, 7]]  # a copy
    np.testing.assert_array_equal(kept.test_targets, sequences.test_targets)
    with pytest.raises(ValueError):
        sequences.without_targets(np.array([True]))
