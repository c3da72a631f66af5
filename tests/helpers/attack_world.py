"""A world with a planted concept for the attack tests, and its trained parent and Retrain.

220 items: 20 concept items ("Horror") and 200 retain items. Half of the retain items are *triggers*,
picked at random: after a trigger the next item is a concept item with probability 0.9 (the other rules
are in :func:`planted_sequences`). The parent must map the trigger set onto "a concept item
comes next", which a linear probe can read from its user representation. The trigger set is an
arbitrary half of 200 items and the tiny model is 32-d, so a model that never trained on concept targets
(Retrain) has no reason to, and no room to, represent it linearly. Concept items share their first
semantic-ID token, so they are one branch of the trie.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from tracer import resources
from tracer.cli import main
from tracer.data.pipeline import PrepareConfig, write_prepared
from tracer.data.raw import RawData
from tracer.semantic_ids.quantization import Tokenization, residual_quantize, save_tokenization
from tracer.semantic_ids.sid_table import SidTable

N_CONCEPT, N_RETAIN = 20, 200
CONCEPT = "Horror"


@dataclass
class AttackWorld:
    data_dir: Path
    parent_dir: Path
    retrain_dir: Path


def planted_sequences(n_users: int, length: int, rng: np.random.Generator) -> list[list[int]]:
    """Item indices (concept items first) per user: after a trigger a concept item with probability 0.9;
    after a concept item a random retain item; after any other retain item the next retain item in a
    fixed chain with probability 0.8 (so retain quality can be learnt), else a random retain item."""
    retain = np.arange(N_CONCEPT, N_CONCEPT + N_RETAIN)
    triggers = set(rng.choice(retain, N_RETAIN // 2, replace=False).tolist())
    users = []
    for _ in range(n_users):
        item = int(rng.choice(retain))
        walk = [item]
        for _ in range(length - 1):
            if item in triggers and rng.random() < 0.9:
                item = int(rng.integers(N_CONCEPT))
            elif item >= N_CONCEPT and rng.random() < 0.8:
                item = N_CONCEPT + (item - N_CONCEPT + 1) % N_RETAIN
            else:
                item = int(rng.choice(retain))
            walk.append(item)
        users.append(walk)
    return users


def write_planted_data(folder: Path, seed: int = 0, n_users: int = 400, length: int = 30) -> Path:
    rng = np.random.default_rng(seed)
    rows = [
        (str(user + 1), f"i{item:03d}", step)
        for user, walk in enumerate(planted_sequences(n_users, length, rng))
        for step, item in enumerate(walk)
    ]
    interactions = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    n_items = N_CONCEPT + N_RETAIN
    items = pd.DataFrame(
        {
            "item_id": [f"i{j:03d}" for j in range(n_items)],
            "title": [f"Item {j}" for j in range(n_items)],
            "text": [f"Item {j}" for j in range(n_items)],
            "concepts": [[CONCEPT] if j < N_CONCEPT else ["Other"] for j in range(n_items)],
        }
    )
    data_dir = folder / "data"
    write_prepared(
        RawData(interactions=interactions, items=items, source="planted"), PrepareConfig(), data_dir
    )
    return data_dir


def write_planted_sids(data_dir: Path, sids_dir: Path, seed: int = 0) -> None:
    """Two levels of 16 codes: concept items alone under first code 0, retain items spread over 1-15."""
    prepared = pd.read_parquet(data_dir / "items.parquet")["item_id"].to_numpy()
    index = np.array([int(item[1:]) for item in prepared])
    rng = np.random.default_rng(seed)
    codebooks = rng.normal(size=(2, 16, 8)).astype(np.float32)
    first = np.where(index < N_CONCEPT, 0, 1 + index % 15)
    second = rng.integers(16, size=len(index))
    vectors = (
        codebooks[0][first]
        + codebooks[1][second]
        + 0.01 * rng.normal(size=(len(index), 8)).astype(np.float32)
    )
    codes, residuals = residual_quantize(vectors.astype(np.float32), codebooks)
    sids_dir.mkdir(parents=True)
    save_tokenization(sids_dir, Tokenization(codes=codes, codebooks=codebooks, residuals=residuals))
    np.save(sids_dir / "item_vectors.npy", vectors.astype(np.float32))
    SidTable.from_level_codes(prepared, codes, codebook_size=16).save(sids_dir)


def write_attack_world(root: Path, seed: int = 0) -> AttackWorld:
    """Data, SIDs, a parent trained 12 epochs (the tiny preset without early stopping) and its Retrain."""
    data_dir = write_planted_data(root, seed)
    sids_dir = root / "sids"
    write_planted_sids(data_dir, sids_dir, seed)
    preset = yaml.safe_load(resources.config_file("tiny.yaml").read_text())
    preset["train"].update(max_epochs=12, patience=12)
    (root / "preset.yaml").write_text(yaml.safe_dump(preset))
    parent, retrain = root / "parent", root / "retrain"
    assert (
        main(
            [
                "train",
                str(data_dir),
                str(sids_dir),
                "--preset",
                str(root / "preset.yaml"),
                "--out",
                str(parent),
            ]
        )
        == 0
    )
    erase = ["erase", str(parent), "--data", str(data_dir), "--concept", CONCEPT, "--method", "retrain"]
    assert main([*erase, "--out", str(retrain)]) == 0
    return AttackWorld(data_dir=data_dir, parent_dir=parent, retrain_dir=retrain)
