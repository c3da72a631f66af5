"""Linear probe (docs/method.md, "Attacks"): can a logistic regression read from the model's user
representation (the hidden state that predicts the next item) whether the next item is in the concept?
Trained on training targets, scored by ROC AUC on test users; Retrain's AUC is the floor to match.

Beside it, the same probe on a freshly initialised copy of the model (``untrained_auc``): what a linear
probe reads from a state that learned nothing, because the history alone predicts the concept. That,
not 0.5, is the chance level of the probe on a given dataset and concept."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tracer.attacks.subject import AttackSubject
from tracer.errors import UserError
from tracer.model.base import GenerativeRecommender
from tracer.model.decoding import pad_histories
from tracer.model.registry import untrained_copy


@dataclass(frozen=True)
class ProbeConfig:
    """``train_targets``: training targets sampled (seeded) to fit the probe; ``c``: inverse L2
    strength of the logistic regression."""

    train_targets: int = 4000
    c: float = 1.0
    batch_size: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        if self.train_targets < 2 or not self.c > 0:
            raise UserError("the probe needs train_targets >= 2 and c > 0")


def user_representations(
    model: GenerativeRecommender, histories: list[np.ndarray], max_history: int, batch_size: int
) -> np.ndarray:
    """(N, d) float32: ``model``'s user representation after each history."""
    device = next(model.parameters()).device
    rows = []
    with torch.inference_mode():
        for start in range(0, len(histories), batch_size):
            padded = pad_histories(histories[start : start + batch_size], max_history)
            rows.append(model.user_representation(padded.to(device)).float().cpu().numpy())
    return np.concatenate(rows) if rows else np.zeros((0, model.d_model), dtype=np.float32)


def training_examples(subject: AttackSubject, count: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """A seeded sample of training targets: (histories, in-concept labels (n,) bool)."""
    users, positions = subject.data.training_targets()
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(len(users), size=min(count, len(users)), replace=False))
    sequences = subject.data.train_sequences
    histories = [sequences[u][:p] for u, p in zip(users[picked], positions[picked])]
    items = np.array([sequences[u][p] for u, p in zip(users[picked], positions[picked])], dtype=np.int64)
    return histories, subject.concept.item_mask[items]


def concept_probe(subject: AttackSubject, config: ProbeConfig = ProbeConfig()) -> dict:
    """ROC AUC on test users of a probe fitted on training targets, for the model (``auc``) and for a
    freshly initialised copy of it (``untrained_auc``, the chance level); both None when a class is
    missing."""
    # scikit-learn loads in ~0.9 s: imported here, not with the CLI
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    histories, labels = training_examples(subject, config.train_targets, config.seed)
    split = subject.evaluation.split
    test_labels = subject.concept.item_mask[subject.data.targets(split)]
    result = {"train_targets": len(labels), "train_positives": int(labels.sum()),
              "test_users": len(test_labels), "test_positives": int(test_labels.sum())}  # fmt: skip
    if labels.all() or not labels.any() or test_labels.all() or not test_labels.any():
        return {**result, "auc": None, "untrained_auc": None}
    test_histories = subject.data.histories(split)

    def auc(model: GenerativeRecommender) -> float:
        probe = make_pipeline(
            StandardScaler(),
            LogisticRegression(C=config.c, class_weight="balanced", max_iter=2000, random_state=config.seed),
        )
        probe.fit(user_representations(model, histories, subject.max_history, config.batch_size), labels)
        test = user_representations(model, test_histories, subject.max_history, config.batch_size)
        return float(roc_auc_score(test_labels, probe.decision_function(test)))

    untrained = untrained_copy(subject.model, config.seed)
    return {**result, "auc": auc(subject.model), "untrained_auc": auc(untrained)}
