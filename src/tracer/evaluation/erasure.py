"""Forgetting metrics of an erased artifact (docs/method.md §6).

Utility on retain-test users, forget quality on forget-test users, Exposure@K (all users and concept
fans), concept mass and median best-concept rank under the exact scorer (a fixed seeded sample of test
users), gaps to Retrain and top-10 overlap with its lists, and cost from the artifact's manifest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tracer.data.artifact import load_dataset
from tracer.data.concepts import Concept, resolve_concept
from tracer.data.sequences import SequenceData, build_sequences
from tracer.evaluation.evaluate import Ranking, decoding_trie, metrics_of_ranking
from tracer.evaluation.scoring_metrics import best_concept_rank, concept_mass
from tracer.model.artifact import artifact_manifest, check_item_alignment, load_model_artifact
from tracer.model.base import GenerativeRecommender
from tracer.model.decoding import exact_score_users, recommend_top_k
from tracer.semantic_ids.sid_table import SidTable
from tracer.semantic_ids.trie import PrefixTrie

HEADLINE_K = 10


@dataclass(frozen=True)
class ErasureEvalConfig:
    split: str = "test"
    k_max: int = 20
    beam_width: int = 20
    batch_size: int = 256
    mass_users: int = 200  # size of the fixed user sample for concept mass / concept rank
    seed: int = 0


def mass_sample(n_users: int, size: int, seed: int) -> np.ndarray:
    """The fixed, seeded sample of test users on which concept mass and rank are computed."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_users, size=min(size, n_users), replace=False))


def rank_users(
    model: GenerativeRecommender, trie: PrefixTrie, data: SequenceData, config: ErasureEvalConfig
) -> Ranking:
    max_history = int(model.config_dict()["max_history"])
    items, scores = recommend_top_k(
        model,
        trie,
        data.histories(config.split),
        config.k_max,
        max(config.beam_width, config.k_max),
        config.batch_size,
        max_history,
        next(model.parameters()).device,
    )
    return Ranking(data.user_ids, items, scores)


def concept_scores(
    model: GenerativeRecommender,
    sid_table: SidTable,
    data: SequenceData,
    concept: Concept,
    config: ErasureEvalConfig,
) -> dict:
    """Concept mass (mean) and best concept rank (median) under the exact scorer over the full trie
    (the model's own distribution: a decode-time filter does not change it)."""
    users = mass_sample(data.n_users, config.mass_users, config.seed)
    histories = [data.histories(config.split)[u] for u in users]
    max_history = int(model.config_dict()["max_history"])
    scores = exact_score_users(
        model,
        sid_table.trie(),
        histories,
        min(config.batch_size, 64),
        max_history,
        next(model.parameters()).device,
    )
    return {
        "users": len(users),
        "concept_mass": float(concept_mass(scores, concept.item_mask).mean()),
        "median_concept_rank": float(np.median(best_concept_rank(scores, concept.item_mask))),
    }


def top_k_overlap(a: np.ndarray, b: np.ndarray, k: int = HEADLINE_K) -> float:
    """Mean over users of |top-k(a) ∩ top-k(b)| / k; (U, K) item-index lists."""
    shared = [len(set(x[:k].tolist()) & set(y[:k].tolist()) - {-1}) for x, y in zip(a, b)]
    return float(np.mean(shared) / k) if shared else 0.0


HEADLINE_METRICS = (
    "retain_ndcg@10",
    "retain_recall@10",
    "forget_recall@10",
    "forget_ndcg@10",
    "exposure@10",
    "exposure_fans@10",
    "concept_mass",
    "median_concept_rank",
)


def headline(metrics: dict) -> dict:
    """The numbers the reports lead with (K = 10), keyed by :data:`HEADLINE_METRICS`."""
    k = HEADLINE_K
    return {
        "retain_ndcg@10": metrics["retain"][f"ndcg@{k}"],
        "retain_recall@10": metrics["retain"][f"recall@{k}"],
        "forget_recall@10": metrics["forget"][f"recall@{k}"],
        "forget_ndcg@10": metrics["forget"][f"ndcg@{k}"],
        "exposure@10": metrics["exposure"][f"exposure@{k}"],
        "exposure_fans@10": metrics["exposure_fans"][f"exposure@{k}"],
        "concept_mass": metrics["concept_scores"]["concept_mass"],
        "median_concept_rank": metrics["concept_scores"]["median_concept_rank"],
    }


def compare_to_retrain(metrics: dict, ranking: Ranking, retrain: dict, retrain_ranking: Ranking) -> dict:
    """Gaps to the gold standard and the top-10 overlap with its lists."""
    return {
        "retrain": retrain.get("model"),
        "gap_retain_ndcg@10": abs(
            metrics["headline"]["retain_ndcg@10"] - retrain["headline"]["retain_ndcg@10"]
        ),
        "gap_exposure@10": abs(metrics["headline"]["exposure@10"] - retrain["headline"]["exposure@10"]),
        "top10_overlap": top_k_overlap(ranking.items, retrain_ranking.items),
        "retrain_seconds": retrain["cost"]["seconds"],
    }


@dataclass
class LoadedArtifact:
    """An artifact with the dataset it was trained on, a concept resolved on it and its decoding trie."""

    model: GenerativeRecommender
    sid_table: SidTable
    model_config: dict
    trie: PrefixTrie
    data: SequenceData
    concept: Concept


def load_for_erasure(
    model_dir: str | Path, data_dir: str | Path, concept_spec: str, device: str = "cpu"
) -> LoadedArtifact:
    """Load ``model_dir`` and ``data_dir``, check that their item orders agree, resolve the concept."""
    dataset = load_dataset(data_dir)
    data = build_sequences(dataset)
    concept = resolve_concept(dataset, concept_spec)
    model, sid_table, model_config = load_model_artifact(model_dir, device)
    check_item_alignment(sid_table, data.item_ids, f"model {model_dir}", f"data {data_dir}")
    trie = decoding_trie(Path(model_dir), sid_table)
    return LoadedArtifact(model, sid_table, model_config, trie, data, concept)


def evaluate_erasure(
    model_dir: str | Path,
    data_dir: str | Path,
    concept_spec: str,
    config: ErasureEvalConfig = ErasureEvalConfig(),
    device: str = "cpu",
    retrain: tuple[dict, Ranking] | None = None,
) -> tuple[dict, Ranking]:
    """Every forgetting metric of ``model_dir`` for ``concept_spec``; returns (metrics, ranking).
    ``retrain``: the (metrics, ranking) of the Retrain artifact, to add the gaps to it."""
    model_dir = Path(model_dir)
    loaded = load_for_erasure(model_dir, data_dir, concept_spec, device)
    model, sid_table, data, concept = loaded.model, loaded.sid_table, loaded.data, loaded.concept
    with torch.inference_mode():
        ranking = rank_users(model, loaded.trie, data, config)
        metrics = metrics_of_ranking(ranking, data, config.split, concept.item_mask, config.k_max)
        metrics["concept_scores"] = concept_scores(model, sid_table, data, concept, config)
    manifest = artifact_manifest(model_dir)
    metrics["cost"] = {
        "seconds": manifest.get("seconds"),
        "params_updated": manifest.get("params_updated"),
        "params_total": sum(p.numel() for p in model.parameters()),
    }
    metrics["headline"] = headline(metrics)
    metrics.update(
        {"model": str(model_dir), "data": str(data_dir), "concept": concept_spec, "split": config.split}
    )
    if retrain is not None:
        metrics["vs_retrain"] = compare_to_retrain(metrics, ranking, *retrain)
    return metrics, ranking


def format_headline(rows: dict[str, dict]) -> str:
    """A fixed-width table: one row per artifact name, the headline metrics as columns."""
    columns = (
        "retain_ndcg@10",
        "forget_recall@10",
        "exposure@10",
        "exposure_fans@10",
        "concept_mass",
        "median_concept_rank",
    )
    return format_metric_table(rows, columns, cell=19)


def format_metric_table(rows: dict[str, dict], columns: tuple[str, ...], cell: int) -> str:
    """A fixed-width table: one row per artifact name, ``columns`` (4 decimals, "-" where missing) in
    cells ``cell`` characters wide."""
    width = max([len(name) for name in rows] + [8])
    lines = [" ".join([f"{'model':<{width}}"] + [f"{c:>{cell}}" for c in columns])]
    for name, values in rows.items():
        cells = [
            f"{values[c]:>{cell}.4f}" if values.get(c) is not None else f"{'-':>{cell}}" for c in columns
        ]
        lines.append(" ".join([f"{name:<{width}}"] + cells))
    return "\n".join(lines)
