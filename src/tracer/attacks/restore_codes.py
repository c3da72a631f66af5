"""Restore-codes (docs/method.md, "Attacks"): the erased weights evaluated with the parent's semantic
IDs for the concept items. If the concept comes back, the erasure was only a change of names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tracer.attacks.subject import AttackSubject
from tracer.errors import UserError
from tracer.evaluation.erasure import concept_scores
from tracer.model.artifact import artifact_manifest
from tracer.semantic_ids.sid_table import SidTable

SIDS_DIR = "sids"


def parent_sid_table(subject: AttackSubject, parent_dir: str | Path | None = None) -> SidTable:
    """The SID table of the model the subject was erased from: ``parent_dir`` if given, else the parent
    its manifest names; a trained (not erased) model is its own parent."""
    if parent_dir is None:
        parent = artifact_manifest(subject.model_dir).get("parent")
        if parent is None:
            return subject.sid_table
        parent_dir = Path(parent)
    folder = Path(parent_dir) / SIDS_DIR
    if not folder.is_dir():
        raise UserError(
            f"restore-codes needs the parent's SID table, but {folder} is missing: "
            "pass the parent model folder with --parent"
        )
    table = SidTable.load(folder)
    if not np.array_equal(table.item_ids, subject.sid_table.item_ids):
        raise UserError(f"{parent_dir} lists other items than {subject.model_dir}: pass its real parent")
    return table


REBUILT = "the SIDs were rebuilt without the forget targets (Retrain, rebuild_sids): no code was re-keyed"


def restore_codes(subject: AttackSubject, parent_dir: str | Path | None = None) -> dict:
    """Exposure@10, forget Recall@10 and concept mass of the subject's weights when the concept items
    take back the parent's codes (every other item keeps the subject's own). A model trained on SIDs
    rebuilt from scratch has no re-keying to undo (its vocabulary may not even hold the parent's
    codes): ``{"skipped": why}``."""
    if artifact_manifest(subject.model_dir).get("summary", {}).get("sids_rebuilt"):
        return {"skipped": REBUILT}
    parent = parent_sid_table(subject, parent_dir)
    items = subject.concept.item_indices
    codes = subject.sid_table.codes.copy()
    codes[items] = parent.codes[items]
    table = SidTable(subject.sid_table.item_ids, codes, subject.sid_table.codebook_size,
                     max(subject.sid_table.dedup_capacity, parent.dedup_capacity))  # fmt: skip
    model = subject.fresh_model()
    model.set_codes(torch.as_tensor(table.codes, device=subject.device))
    metrics = subject.exposure_and_forget_recall(model, table.trie())
    with torch.inference_mode():
        scores = concept_scores(model, table, subject.data, subject.concept, subject.evaluation)
    return {
        "items_restored": int((subject.sid_table.codes[items] != parent.codes[items]).any(1).sum()),
        **metrics,
        "concept_mass": scores["concept_mass"],
    }
