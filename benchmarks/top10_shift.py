"""Where two models' top-10 lists differ for the retain users, and whether the difference is the
concept's content neighbours.

    .venv/bin/python benchmarks/top10_shift.py MODEL REFERENCE --data DATA --concept "Children's" \
        [--split test] [--neighbours 5] [--cache DIR]

MODEL and REFERENCE are model folders (e.g. a TRACER artifact and the Filter artifact of the same
parent: Filter ranks retain items exactly as the parent does, so every slot where TRACER differs from it
is a change TRACER's training made to the retain ranking). For the users whose held-out item is not in
the concept it prints: both models' NDCG@10, the mean top-10 overlap, and, over the items MODEL adds to
a list (in its top-10, not in REFERENCE's) and drops from it, the share that are among the
``--neighbours`` nearest retain items of some concept item (the coherence set P(i_T) of Eq. 9,
docs/method.md §4.4, by cosine of the model's frozen item vectors), next to that set's share of the
catalogue. Rankings are cached as Parquet under ``--cache`` so reruns are instant.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from tracer.data.artifact import load_dataset
from tracer.data.concepts import resolve_concept
from tracer.evaluation.evaluate import recommend
from tracer.evaluation.metrics import ndcg_at_k
from tracer.unlearning.coherence import nearest_retain_items
from tracer.unlearning.runner import SID_FOLDER


def top_lists(model: Path, data: Path, split: str, cache: Path) -> pd.Series:
    """user_id -> list of the model's top-10 item ids (rank order), from the cache when present."""
    path = cache / f"{model.resolve().as_posix().strip('/').replace('/', '__')}-{split}.parquet"
    frame = pd.read_parquet(path) if path.exists() else recommend(model, data, split=split, out=path)
    return frame.sort_values(["user_id", "rank"]).groupby("user_id")["item_id"].agg(list)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("reference", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--concept", required=True)
    parser.add_argument("--split", default="test", choices=["valid", "test"])
    parser.add_argument("--neighbours", type=int, default=5)
    parser.add_argument("--cache", type=Path, default=Path("runs/top10-cache"))
    args = parser.parse_args()

    dataset = load_dataset(args.data)
    concept = resolve_concept(dataset, args.concept)
    item_ids = dataset.items["item_id"].to_numpy()
    vectors = np.load(args.model / SID_FOLDER / "item_vectors.npy")
    neighbours = nearest_retain_items(vectors, concept.item_mask, args.neighbours)
    neighbour_ids = set(item_ids[np.unique(neighbours[concept.item_mask])])
    held_out = getattr(dataset, args.split)
    retain_users = held_out[~held_out["item_id"].isin(set(item_ids[concept.item_mask]))]

    models = {"model": args.model, "reference": args.reference}
    lists = {name: top_lists(path, args.data, args.split, args.cache) for name, path in models.items()}
    added, dropped, overlap = [], [], []
    for user in retain_users["user_id"]:
        mine, theirs = set(lists["model"][user]), set(lists["reference"][user])
        added += mine - theirs
        dropped += theirs - mine
        overlap.append(len(mine & theirs) / len(theirs))
    index = {item: position for position, item in enumerate(item_ids)}
    targets = np.array([index[item] for item in retain_users["item_id"]])
    for name in lists:
        ranked = np.array([[index[item] for item in lists[name][user]] for user in retain_users["user_id"]])
        ndcg = ndcg_at_k(ranked, targets, 10).mean()
        print(f"{name:9s} retain NDCG@10 {ndcg:.4f}  ({args.split}, {len(targets)} users)")
    added, dropped = pd.Series(added, dtype=object), pd.Series(dropped, dtype=object)
    print(f"top-10 overlap with the reference: {np.mean(overlap):.3f}")
    print(
        f"concept content neighbours (K_c {args.neighbours}): {added.isin(neighbour_ids).mean():.3f} of the"
        f" {len(added)} added slots, {dropped.isin(neighbour_ids).mean():.3f} of the {len(dropped)} dropped,"
        f" {len(neighbour_ids) / len(item_ids):.3f} of the catalogue"
    )
    most = added.value_counts().head(6)
    print("most added items (slots):", ", ".join(f"{item} ({count})" for item, count in most.items()))


if __name__ == "__main__":
    main()
