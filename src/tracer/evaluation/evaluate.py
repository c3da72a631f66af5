"""Evaluate a model artifact: rank every user of a split by beam search, then compute the metrics.

The model artifact (a folder written by ``tracer train`` or an erasure method) is read with
:func:`tracer.model.artifact.load_model_artifact`.

Ranked lists are kept as a :class:`Ranking` (item indices + scores per user) and can be written as a
Parquet table (``user_id``, ``rank`` 1..K, ``item_id``, ``score``) and read back to recompute metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from tracer.data.artifact import load_dataset
from tracer.data.concepts import resolve_concept
from tracer.data.sequences import SequenceData, Split, build_sequences
from tracer.distributed import DistContext, gather_rows, resolve_device, shard
from tracer.errors import UserError
from tracer.evaluation.metrics import DEFAULT_KS, summarize_ranking
from tracer.io import write_json, write_parquet
from tracer.model.artifact import artifact_manifest, check_item_alignment, load_model_artifact
from tracer.model.base import GenerativeRecommender
from tracer.model.decoding import recommend_top_k
from tracer.outputs import check_file_output
from tracer.semantic_ids.sid_table import SidTable
from tracer.semantic_ids.trie import PrefixTrie


def decoding_trie(folder: str | Path, sid_table: SidTable) -> PrefixTrie:
    """The artifact's trie for beam search: without the items a Filter erasure excluded."""
    excluded = artifact_manifest(folder).get("decode_exclude_item_ids", [])
    trie = sid_table.trie()
    if excluded:
        trie = trie.without_items(np.isin(sid_table.item_ids, np.asarray(excluded, dtype=str)))
    return trie


def rank_histories(
    model: GenerativeRecommender,
    trie: PrefixTrie,
    histories: list[np.ndarray],
    k: int,
    beam_width: int,
    batch_size: int,
    max_history: int,
    device: torch.device | str,
    context: DistContext | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Beam-search top-k of every history -> items (U, k) int64, scores (U, k) float32.

    With a distributed ``context`` each rank decodes its shard and every rank gets all rows back.
    UserError when a score is NaN or +inf (a model that overflows): no such ranking goes out.
    """
    model.eval()
    if context is None or not context.distributed:
        return _finite_scores(
            *recommend_top_k(
                model, trie, histories, k, beam_width, batch_size, max_history, device, progress=False
            )
        )
    rows = shard(np.arange(len(histories)), context)
    items, scores = recommend_top_k(
        model,
        trie,
        [histories[i] for i in rows],
        k,
        beam_width,
        batch_size,
        max_history,
        device,
        progress=False,
    )
    total = len(histories)
    return _finite_scores(gather_rows(items, rows, total, context), gather_rows(scores, rows, total, context))


def _finite_scores(items: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores are log-probabilities (<= 0; -inf marks an empty slot): NaN or +inf means a broken model."""
    if np.isnan(scores).any() or np.isposinf(scores).any():
        raise UserError(
            "the model scores items as NaN or infinite: its weights overflow; use a healthy model"
        )
    return items, scores


@dataclass
class Ranking:
    """Top-K lists of users: ``items`` int64 (U, K) item indices (-1 = empty), ``scores`` (U, K)."""

    user_ids: np.ndarray
    items: np.ndarray
    scores: np.ndarray

    def to_frame(self, item_ids: np.ndarray) -> pd.DataFrame:
        """Long table: ``user_id``, ``rank`` (1..K), ``item_id``, ``score``; empty slots are dropped."""
        users, k = self.items.shape
        keep = (self.items >= 0).reshape(-1)
        flat_items = self.items.reshape(-1)[keep]
        return pd.DataFrame(
            {
                "user_id": np.repeat(self.user_ids, k)[keep],
                "rank": np.tile(np.arange(1, k + 1, dtype=np.int64), users)[keep],
                "item_id": np.asarray(item_ids)[flat_items],
                "score": self.scores.reshape(-1)[keep].astype(np.float64),
            }
        )

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, user_ids: np.ndarray, item_ids: np.ndarray) -> Ranking:
        """Inverse of :meth:`to_frame` for these users and items (missing slots become -1 / -inf)."""
        k = int(frame["rank"].max()) if len(frame) else 0
        user_row = pd.Series(np.arange(len(user_ids)), index=pd.Index(user_ids))
        item_index = pd.Series(np.arange(len(item_ids)), index=pd.Index(item_ids))
        rows = user_row.loc[frame["user_id"]].to_numpy()
        columns = frame["rank"].to_numpy() - 1
        items = np.full((len(user_ids), k), -1, dtype=np.int64)
        scores = np.full((len(user_ids), k), -np.inf, dtype=np.float32)
        items[rows, columns] = item_index.loc[frame["item_id"]].to_numpy()
        scores[rows, columns] = frame["score"].to_numpy()
        return cls(np.asarray(user_ids), items, scores)


def _checked_split(split: str) -> Split:
    try:
        return Split(split)
    except ValueError:
        raise UserError(
            f"unknown split {split!r}: choose one of {', '.join(s.value for s in Split)}"
        ) from None


def rank_split(
    model: GenerativeRecommender,
    sid_table: SidTable,
    data: SequenceData,
    split: str,
    k: int,
    beam_width: int | None = None,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    trie: PrefixTrie | None = None,
) -> Ranking:
    """Beam-search top-k of every user of ``split`` (history = everything before its target)."""
    split = _checked_split(split)
    if k > sid_table.n_items:
        raise UserError(
            f"k={k} exceeds the catalogue's {sid_table.n_items} items: pass at most {sid_table.n_items}"
        )
    beam_width = beam_width or max(20, k)
    if beam_width < k:
        raise UserError(f"beam width {beam_width} is below k={k}: pass a beam of at least k")
    widest = max(20, sid_table.n_items)  # a wider beam keeps nothing more, it only allocates more
    if beam_width > widest:
        raise UserError(
            f"beam width {beam_width} exceeds the catalogue's {sid_table.n_items} items: "
            f"pass at most {widest}"
        )
    max_history = int(model.config_dict()["max_history"])
    items, scores = rank_histories(
        model, trie or sid_table.trie(), data.histories(split), k, beam_width, batch_size, max_history, device
    )
    return Ranking(data.user_ids, items, scores)


def _load_for_ranking(model_dir, data_dir, device):
    device = resolve_device(device) if isinstance(device, str) else device
    model, sid_table, config = load_model_artifact(model_dir, device)
    dataset = load_dataset(data_dir)
    data = build_sequences(dataset)
    check_item_alignment(sid_table, data.item_ids, f"model {model_dir}", f"data {data_dir}")
    return model, sid_table, config, dataset, data, device


def recommend(
    model_dir: str | Path,
    data_dir: str | Path,
    split: str = "test",
    k: int = 10,
    beam_width: int | None = None,
    batch_size: int = 256,
    device: str = "auto",
    out: str | Path | None = None,
    overwrite: bool = False,
) -> pd.DataFrame:
    """Top-k recommendations of every user of ``split``; written to ``out`` (Parquet) when given
    (:func:`tracer.outputs.check_file_output`, before any work: an existing file only with ``overwrite``)."""
    _checked_split(split)
    if k < 1:
        raise UserError(f"k must be >= 1, got {k}")
    if out is not None:
        check_file_output(Path(out), overwrite, {"model": Path(model_dir), "dataset": Path(data_dir)})
    model, sid_table, _, _, data, device = _load_for_ranking(model_dir, data_dir, device)
    trie = decoding_trie(model_dir, sid_table)
    ranking = rank_split(model, sid_table, data, split, k, beam_width, batch_size, device, trie)
    frame = ranking.to_frame(data.item_ids)
    if out is not None:
        write_parquet(out, frame)
    return frame


def evaluate_model(
    model_dir: str | Path,
    data_dir: str | Path,
    split: str = "test",
    concept_spec: str | None = None,
    k_max: int = 20,
    beam_width: int | None = None,
    batch_size: int = 256,
    device: str = "auto",
    out: str | Path | None = None,
    rankings_out: str | Path | None = None,
) -> dict:
    """Recall/NDCG@{5,10,20} (<= ``k_max``) of a model on all users of ``split``; with a concept also
    the retain/forget/exposure groups (docs/method.md §6). ``out``: metrics JSON; ``rankings_out``:
    the ranked lists (Parquet), from which :func:`metrics_from_rankings` recomputes the same numbers."""
    _checked_split(split)
    model, sid_table, _, dataset, data, device = _load_for_ranking(model_dir, data_dir, device)
    concept = resolve_concept(dataset, concept_spec) if concept_spec else None
    trie = decoding_trie(model_dir, sid_table)
    ranking = rank_split(
        model, sid_table, data, split, k_max, beam_width or max(20, k_max), batch_size, device, trie
    )
    if rankings_out is not None:
        write_parquet(rankings_out, ranking.to_frame(data.item_ids))
    result = {
        "model": str(model_dir),
        "data": str(data_dir),
        "split": str(_checked_split(split).value),
        "concept": None if concept is None else {"spec": concept.name, "n_items": concept.n_items},
        "beam_width": beam_width or max(20, k_max),
        **metrics_of_ranking(ranking, data, split, concept.item_mask if concept else None, k_max),
    }
    if out is not None:
        write_json(out, result)
    return result


def metrics_of_ranking(
    ranking: Ranking, data: SequenceData, split: str, concept_mask: np.ndarray | None = None, k_max: int = 20
) -> dict:
    """:func:`summarize_ranking` of a ranking against the split's targets and histories."""
    ks = tuple(k for k in DEFAULT_KS if k <= k_max) or (k_max,)
    histories = data.histories(split) if concept_mask is not None else None
    return summarize_ranking(ranking.items, data.targets(split), ks, concept_mask, histories)


def metrics_from_rankings(
    rankings_path: str | Path, data_dir: str | Path, split: str, concept_spec=None
) -> dict:
    """Recompute the metrics from a saved rankings table (no model needed)."""
    dataset = load_dataset(data_dir)
    data = build_sequences(dataset)
    frame = pd.read_parquet(rankings_path)
    ranking = Ranking.from_frame(frame, data.user_ids, data.item_ids)
    concept = resolve_concept(dataset, concept_spec) if concept_spec else None
    k_max = ranking.items.shape[1]
    return metrics_of_ranking(ranking, data, split, concept.item_mask if concept else None, k_max)


def format_metrics_table(result: dict) -> str:
    """A plain-text table of the metric groups present in ``result`` (None shows as '-')."""
    lines = []
    for groups in (("all", "retain", "forget"), ("exposure", "exposure_fans")):
        present = [name for name in groups if name in result]
        if not present:
            continue
        columns = [key for key in result[present[0]] if key != "users"]
        lines.append(f"{'group':<14}{'users':>7}" + "".join(f"{c:>13}" for c in columns))
        for name in present:
            cells = ["-" if result[name][c] is None else f"{result[name][c]:.4f}" for c in columns]
            lines.append(f"{name:<14}{result[name]['users']:>7}" + "".join(f"{c:>13}" for c in cells))
    return "\n".join(lines)
