"""The model under attack: an artifact loaded with its data, concept and decoding trie."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tracer.data.concepts import Concept, ConceptTargets, concept_targets
from tracer.data.sequences import SequenceData
from tracer.evaluation.erasure import HEADLINE_K, ErasureEvalConfig, load_for_erasure, rank_users
from tracer.evaluation.metrics import exposure_at_k, recall_at_k
from tracer.model.base import GenerativeRecommender
from tracer.semantic_ids.sid_table import SidTable
from tracer.semantic_ids.trie import PrefixTrie


@dataclass
class AttackSubject:
    """Everything an attack reads. ``model`` is a private copy in eval mode: attacks may train it."""

    model_dir: Path
    model: GenerativeRecommender
    sid_table: SidTable
    trie: PrefixTrie
    model_config: dict
    data: SequenceData
    concept: Concept
    targets: ConceptTargets
    evaluation: ErasureEvalConfig

    @property
    def max_history(self) -> int:
        return int(self.model.config_dict()["max_history"])

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def fresh_model(self) -> GenerativeRecommender:
        """A trainable copy of the loaded weights (the subject's own model stays as loaded)."""
        return copy.deepcopy(self.model)

    def exposure_and_forget_recall(
        self, model: GenerativeRecommender | None = None, trie: PrefixTrie | None = None
    ) -> dict[str, float]:
        """Exposure@10 over all test users and Recall@10 on forget-test users (test target in the
        concept) of ``model`` (default: the loaded one) decoded with ``trie`` (default: the artifact's)."""
        model = self.model if model is None else model
        was_training = model.training
        model.eval()
        with torch.inference_mode():
            ranking = rank_users(model, self.trie if trie is None else trie, self.data, self.evaluation)
        model.train(was_training)
        targets = self.data.targets(self.evaluation.split)
        forget_users = self.concept.item_mask[targets]
        recall = recall_at_k(ranking.items[forget_users], targets[forget_users], HEADLINE_K)
        return {
            "exposure@10": float(exposure_at_k(ranking.items, self.concept.item_mask, HEADLINE_K).mean()),
            "forget_recall@10": float(recall.mean()) if len(recall) else float("nan"),
        }


def load_subject(
    model_dir: str | Path,
    data_dir: str | Path,
    concept_spec: str,
    evaluation: ErasureEvalConfig = ErasureEvalConfig(),
    device: str = "cpu",
) -> AttackSubject:
    model_dir = Path(model_dir)
    loaded = load_for_erasure(model_dir, data_dir, concept_spec, device)
    return AttackSubject(
        model_dir=model_dir,
        model=loaded.model,
        sid_table=loaded.sid_table,
        trie=loaded.trie,
        model_config=loaded.model_config,
        data=loaded.data,
        concept=loaded.concept,
        targets=concept_targets(loaded.data, loaded.concept),
        evaluation=evaluation,
    )


def mean_height(steps: list[int], values: list[float]) -> float:
    """Area under the piecewise-linear curve through (steps[i], values[i]) divided by its width: the
    curve's mean height, in the values' units (steps increasing, at least two points)."""
    x = np.asarray(steps, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2) / (x[-1] - x[0]))
