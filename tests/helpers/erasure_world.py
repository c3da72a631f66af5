"""A tiny but complete world for erasure tests: prepared data, SIDs with tokenizer state, a model."""

from __future__ import annotations

import copy
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tests.helpers.movielens_files import write_atomic_dataset
from tracer.cli import main
from tracer.data.artifact import load_dataset
from tracer.data.concepts import concept_targets, resolve_concept
from tracer.data.sequences import build_sequences
from tracer.model.artifact import load_model_artifact, save_model_artifact
from tracer.model.registry import model_from_preset
from tracer.semantic_ids.quantization import Tokenization, residual_quantize, save_tokenization
from tracer.semantic_ids.sid_table import SidTable
from tracer.training.config import load_preset
from tracer.unlearning.base import ErasureContext
from tracer.unlearning.batches import ForgetRetainBatch, TargetSampler

N_ITEMS = 24
HORROR = set(range(0, 24, 4))  # items 1, 5, 9, ... (index 0, 4, 8, ...) are Horror
SID_FLAGS = ("--levels", "2", "--codebook-size", "4", "--seed", "0")  # write_world's `tracer sids` build


@dataclass
class World:
    data_dir: Path
    sids_dir: Path
    model_dir: Path
    sid_table: SidTable


def write_world(root: Path, backbone: str = "causal", seed: int = 0, encoder: str | None = None) -> World:
    """``encoder`` None: SIDs of planted random vectors (no stats.json); else the SIDs `tracer sids
    --encoder ENCODER` builds (:data:`SID_FLAGS`)."""
    rng = np.random.default_rng(seed)
    items = [
        (str(i + 1), f"Film {i + 1}", "1990", "Horror" if i in HORROR else ("Comedy" if i % 2 else "Drama"))
        for i in range(N_ITEMS)
    ]
    interactions = []
    for user in range(30):
        start = int(rng.integers(N_ITEMS))
        for t in range(8):  # mostly "next item = previous + 1": learnable
            item = (start + t) % N_ITEMS if rng.random() < 0.8 else int(rng.integers(N_ITEMS))
            interactions.append((str(user + 1), str(item + 1), str(1000 + t)))
    raw = write_atomic_dataset(root / "raw", interactions, items)
    data_dir = root / "data"
    assert main(["prepare", "--dataset", "ml-100k", "--path", str(raw), "--out", str(data_dir)]) == 0
    dataset = load_dataset(data_dir)

    sids_dir = root / "sids"
    if encoder is None:
        vectors = rng.normal(size=(dataset.n_items, 8)).astype(np.float32)
        codebooks = rng.normal(size=(2, 4, 8)).astype(np.float32)
        codes, residuals = residual_quantize(vectors, codebooks)
        sids_dir.mkdir()
        save_tokenization(sids_dir, Tokenization(codes=codes, codebooks=codebooks, residuals=residuals))
        np.save(sids_dir / "item_vectors.npy", vectors)
        table = SidTable.from_level_codes(dataset.items["item_id"].to_numpy(), codes, codebook_size=4)
        table.save(sids_dir)
    else:
        assert main(["sids", str(data_dir), "--out", str(sids_dir), "--encoder", encoder, *SID_FLAGS]) == 0
        table = SidTable.load(sids_dir)

    torch.manual_seed(seed)
    model = model_from_preset(backbone, "tiny", torch.as_tensor(table.codes), table.vocab_sizes).eval()
    model_dir = root / "model"
    train_config = load_preset("tiny").replace(backbone=backbone, max_epochs=2)
    save_model_artifact(model_dir, model, table, config=train_config)
    for name in ("tokenizer.safetensors", "item_vectors.npy", "stats.json"):
        if (sids_dir / name).is_file():
            shutil.copy2(sids_dir / name, model_dir / "sids" / name)
    return World(data_dir=data_dir, sids_dir=sids_dir, model_dir=model_dir, sid_table=table)


def make_context(world: World, needs_reference: bool):
    """(model, erasure context, one forget/retain batch of 16 examples each) of ``world``'s Horror."""
    dataset = load_dataset(world.data_dir)
    model, table, model_config = load_model_artifact(world.model_dir)
    sequences = build_sequences(dataset)
    concept = resolve_concept(dataset, "Horror")
    targets = concept_targets(sequences, concept)
    reference = copy.deepcopy(model).requires_grad_(False) if needs_reference else None
    scratch = world.model_dir.parent / "scratch"
    scratch.mkdir(exist_ok=True)
    context = ErasureContext(
        data_dir=world.data_dir,
        model_config=model_config,
        sequences=sequences,
        concept=concept,
        targets=targets,
        sid_table=table,
        sids_dir=world.model_dir / "sids",
        reference=reference,
        device=torch.device("cpu"),
        scratch=scratch,
    )
    forget = TargetSampler(sequences, targets.forget_targets, 16, 8, seed=0).sample()
    retain = TargetSampler(sequences, ~targets.forget_targets, 16, 8, seed=1).sample()
    return model, context, ForgetRetainBatch(forget, retain)
