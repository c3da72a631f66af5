"""`tracer prepare --dataset synthetic`: deterministic, planted concepts that resolve and show in the
titles, a popularity skew, a sequential signal, and a small world that runs through every stage."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from tracer.cli import main
from tracer.data.artifact import load_dataset
from tracer.data.concepts import resolve_concept
from tracer.data.sequences import build_sequences
from tracer.data.synthetic import CONCEPT_WORDS
from tracer.io import read_json

PARQUETS = ("items.parquet", "interactions.parquet", "valid.parquet", "test.parquet")


def prepare(out, users=300, items=600, interactions=9000, concepts=4, seed=0, extra=()):
    sizes = ["--users", users, "--items", items, "--interactions", interactions, "--concepts", concepts]
    args = ["prepare", "--dataset", "synthetic", *map(str, sizes), "--seed", str(seed), "--out", str(out)]
    return main([*args, *extra])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic") / "data"
    assert prepare(out) == 0
    return out


def test_same_seed_same_bytes_other_seed_other_data(world, tmp_path):
    assert prepare(tmp_path / "again") == 0
    for name in PARQUETS:
        assert (tmp_path / "again" / name).read_bytes() == (world / name).read_bytes(), name
    assert prepare(tmp_path / "seed1", seed=1) == 0
    assert (tmp_path / "seed1" / "interactions.parquet").read_bytes() != (
        world / "interactions.parquet"
    ).read_bytes()


def test_sizes_are_the_requested_ones(world):
    manifest = read_json(world / "manifest.json")
    assert (manifest["n_users"], manifest["n_interactions"]) == (300, 9000)
    assert manifest["n_items"] > 0.95 * 600  # the Zipf tail still gets interactions
    assert manifest["source"] == "synthetic" and manifest["notes"]["synthetic"]["seed"] == 0


def test_planted_concept_resolves_and_its_titles_carry_its_words(world):
    dataset = load_dataset(world)
    horror = resolve_concept(dataset, "horror")
    assert 0 < horror.n_items < dataset.n_items
    words = "|".join(CONCEPT_WORDS["Horror"].split())
    has_word = dataset.items["title"].str.contains(rf"(?i)^(?:{words}) ").to_numpy()
    assert has_word[horror.item_mask].mean() > 0.5  # partly separable by text ...
    assert has_word[~horror.item_mask].mean() < 0.2  # ... but not perfectly
    assert 0 < has_word[~horror.item_mask].mean()
    assert {"Horror", "Comedy", "Space", "Romance"} == set(dataset.items["concepts"].explode())


def test_popularity_skew(world):
    counts = load_dataset(world).interactions["item_id"].value_counts().to_numpy()
    top = counts[: max(1, len(counts) // 100)].sum() / counts.sum()
    assert top > 0.05  # the top 1% of items take over 5x their uniform share


def _cluster(titles: pd.Series) -> np.ndarray:
    return titles.map(lambda title: re.match(r"\w+ of (\w+) \d+$", title).group(1)).to_numpy()


def test_next_item_stays_in_its_cluster_far_above_chance(world):
    dataset = load_dataset(world)
    sequences = build_sequences(dataset)
    cluster = _cluster(dataset.items["title"])
    same = np.concatenate([cluster[seq[1:]] == cluster[seq[:-1]] for seq in sequences.train_sequences])
    _, sizes = np.unique(cluster[np.concatenate(sequences.train_sequences)], return_counts=True)
    chance = ((sizes / sizes.sum()) ** 2).sum()
    assert same.mean() > 0.5 and same.mean() > 4 * chance


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--users", "10", "--items", "50", "--interactions", "100"], "synthetic needs --concepts"),
        (["--users", "10", "--items", "many", "--interactions", "100", "--concepts", "2"], "number of items"),
        (
            ["--users", "100", "--items", "50", "--interactions", "100", "--concepts", "2"],
            "--interactions >=",
        ),
        (["--users", "10", "--items", "5", "--interactions", "100", "--concepts", "3"], "--items >= 2 x"),
        (["--users", "10", "--items", "50", "--interactions", "100", "--concepts", "1"], "--concepts >= 2"),
        (["--users", "10", "--items", "50", "--interactions", "9" * 12, "--concepts", "2"], "at most"),
        (["--users", "1", "--items", "4", "--interactions", "3", "--concepts", "2", "--seed", "-1"], "seed"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, flags, message):
    assert main(["prepare", "--dataset", "synthetic", *flags, "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "d").exists()


def test_synthetic_flags_are_refused_for_other_datasets(tmp_path, capsys):
    assert main(["prepare", "--dataset", "ml-100k", "--users", "5", "--out", str(tmp_path / "d")]) == 2
    assert "only apply to --dataset synthetic" in capsys.readouterr().err


def _popularity_ndcg10(data) -> float:
    sequences = build_sequences(load_dataset(data))
    counts = np.bincount(np.concatenate(sequences.train_sequences), minlength=sequences.n_items)
    rank = np.full(sequences.n_items, -1.0)
    rank[np.argsort(-counts, kind="stable")[:10]] = np.arange(10)
    hits = rank[sequences.test_targets]
    return float((1 / np.log2(hits[hits >= 0] + 2)).sum() / len(hits))


def test_a_small_world_runs_through_every_stage(world, tmp_path, monkeypatch):
    monkeypatch.setenv("TRACER_CACHE", str(tmp_path / "cache"))
    sids, run, erased = tmp_path / "sids", tmp_path / "run", tmp_path / "erased"
    assert main(["sids", str(world), "--out", str(sids)]) == 0  # text SIDs from the item text
    assert main(["train", str(world), str(sids), "--preset", "tiny", "--out", str(run)]) == 0
    model_ndcg = read_json(run / "metrics.json")["test"]["all"]["ndcg@10"]
    assert model_ndcg > 1.1 * _popularity_ndcg10(world)  # 4 epochs of the tiny model beat popularity
    erase = ["erase", str(run), "--data", str(world), "--concept", "Horror", "--method", "tracer"]
    assert main([*erase, "--out", str(erased), "--set", "steps=3"]) == 0
    metrics = tmp_path / "metrics.json"
    evaluate = ["evaluate", str(erased), "--data", str(world), "--concept", "Horror", "--device", "cpu"]
    assert main([*evaluate, "--out", str(metrics)]) == 0
    assert "headline" in read_json(metrics)
    attack = tmp_path / "attack.json"
    assert main(["attack", str(erased), "--data", str(world), "--concept", "Horror", "--attacks",
                 "relearning", "--steps", "2", "--examples", "4", "--out", str(attack)]) == 0  # fmt: skip
    assert read_json(attack)["concept"] == "Horror"


def test_the_last_item_predicts_the_next_far_better_than_popularity(world):
    sequences = build_sequences(load_dataset(world))
    pairs = np.concatenate([np.stack([seq[:-1], seq[1:]], 1) for seq in sequences.train_sequences])
    n_items = sequences.n_items
    counts = np.bincount(pairs[:, 0] * n_items + pairs[:, 1], minlength=n_items**2).reshape(n_items, n_items)
    popular = np.argsort(-counts.sum(0), kind="stable")[:10]
    last = sequences.valid_targets  # the test history ends with the validation item
    followers = np.argsort(-counts[last], axis=1, kind="stable")[:, :10]
    markov = (followers == sequences.test_targets[:, None]).any(1).mean()
    popularity = np.isin(sequences.test_targets, popular).mean()
    assert markov > 2 * popularity


def test_a_world_larger_than_memory_is_refused_before_it_is_drawn(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("tracer.data.synthetic._available", lambda: 2**20)
    assert prepare(tmp_path / "d") == 2
    assert "GiB is available: ask for fewer" in capsys.readouterr().err
