"""How much easier the validation item is than the test item, for a generative model and for SASRec.

For each model, NDCG@10 and Recall@10 over all users (full catalogue) of four (history, target) pairs:
the validation item after the training items, the test item after the training items + validation
item, and the same two one step further away (validation item after the training items but the last;
test item after the training items). Generative models are ranked by the exact scorer (every item's
log-probability), SASRec by its own full ranking. Also prints the popularity ranking's NDCG@10 on both
splits, the median training count of the targets and the median time gap before them.

Run: ``.venv/bin/python benchmarks/valid_test_gap.py --data DATA [--model DIR ...] [--sasrec DIR ...]``
(prints a markdown table; results in docs/benchmarks/training.md, "Closing the gap, round 2").
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from tracer.data.artifact import load_dataset
from tracer.data.sequences import SequenceData, build_sequences
from tracer.evaluation.evaluate import decoding_trie
from tracer.evaluation.metrics import ndcg_at_k, recall_at_k
from tracer.model.artifact import load_model_artifact
from tracer.model.decoding import exact_score_users
from tracer.model.sasrec import load_sasrec
from tracer.training.sasrec_train import rank_histories

Ranker = Callable[[list[np.ndarray]], np.ndarray]  # histories -> top-20 item indices (U, 20)


def generative_ranker(folder: Path) -> Ranker:
    model, sid_table, _ = load_model_artifact(folder)
    trie = decoding_trie(folder, sid_table)

    def rank(histories: list[np.ndarray]) -> np.ndarray:
        scores = exact_score_users(model, trie, histories, 256, model.config.max_history, progress=False)
        return np.argsort(-scores, axis=1)[:, :20]

    return rank


def sasrec_ranker(folder: Path) -> Ranker:
    model = load_sasrec(folder)
    return lambda histories: rank_histories(model, histories)[0]


def cases(data: SequenceData) -> dict[str, tuple[list[np.ndarray], np.ndarray]]:
    """Name -> (histories, targets) of the four pairs of the module docstring."""
    return {
        "valid item (train items)": (data.histories("valid"), data.valid_targets),
        "test item (train items + valid item)": (data.histories("test"), data.test_targets),
        "valid item, skipping one (train items but the last)": (
            [seq[:-1] for seq in data.train_sequences],
            data.valid_targets,
        ),
        "test item, skipping one (train items)": (data.histories("valid"), data.test_targets),
    }


def split_facts(data_dir: Path, data: SequenceData) -> list[str]:
    """Popularity NDCG@10, median training count and median time gap before the target, per split."""
    counts = np.bincount(np.concatenate(data.train_sequences), minlength=data.n_items)
    popular = np.argsort(-counts)[:20]
    frame = pd.read_parquet(data_dir / "interactions.parquet").sort_values(
        ["user_id", "timestamp"], kind="stable"
    )
    gaps = frame.groupby("user_id")["timestamp"].apply(lambda times: times.to_numpy()[-3:])
    gaps = np.array(
        [np.diff(times) for times in gaps if len(times) == 3]
    )  # (users, 2): before valid, before test
    lines = []
    for column, split in enumerate(("valid", "test")):
        targets = data.targets(split)
        ndcg = ndcg_at_k(np.tile(popular, (len(targets), 1)), targets, 10).mean()
        lines.append(
            f"{split}: popularity NDCG@10 {ndcg:.4f}, median training count of the target "
            f"{np.median(counts[targets]):.0f}, median gap before it {np.median(gaps[:, column]):.0f} s"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model", type=Path, nargs="*", default=[], help="generative model folders")
    parser.add_argument("--sasrec", type=Path, nargs="*", default=[], help="tracer sasrec output folders")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = build_sequences(load_dataset(args.data))
    rankers = {f"{folder.name} (exact)": generative_ranker(folder) for folder in args.model}
    rankers |= {f"{folder.name} (SASRec)": sasrec_ranker(folder) for folder in args.sasrec}
    print("| target (history) | " + " | ".join(rankers) + " |")
    print("|---|" + "---:|" * len(rankers))
    for name, (histories, targets) in cases(data).items():
        cells = []
        for rank in rankers.values():
            ranked = rank(histories)
            cells.append(
                f"{ndcg_at_k(ranked, targets, 10).mean():.4f} / {recall_at_k(ranked, targets, 10).mean():.4f}"
            )
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\n(NDCG@10 / Recall@10, all users)\n")
    print("\n".join(split_facts(args.data, data)))


if __name__ == "__main__":
    main()
