"""Which concept items TRACER's commit moved, against how firmly each sat on its stored codes, and
which concept items still reach users' top-10 lists.

    .venv/bin/python benchmarks/pinned_items.py ERASED --data DATA --recs RECS.parquet [--k 10] \
        [--compare PARENT RETRAIN ...] [--users 600]

ERASED is a TRACER artifact (its manifest names the concept and holds tau; its ``sids/`` folder holds
the parent's tokenizer state and the committed SID table). RECS is that artifact's ranked lists
(``tracer recommend ERASED --data DATA --split test --k 10 --out RECS``, or a bench's
``recs/tracer.parquet`` of the same cell).

The margin of an item at level l is the logit gap of Eq. 6 at phi = 0 between its stored code and the
runner-up, (d_2nd - d_1st) / tau with d the squared distance of its residual to a codeword: q_phi of
the stored code is at least 1 / (1 + (K - 1) exp(-margin)). Eq. 11 updates phi only where
rho_l(k) > rho_bar_{i,l}; at the stored code rho_bar tends to rho_l(stored) as q becomes one-hot, so a
large margin pins the item to its code and leaves its forgetting to theta alone. Printed: the share of
concept items whose code moved, per margin band and level, and each concept item that holds top-K slots
with its slots, interaction count, margins and whether it moved.
"""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from tracer.data.artifact import load_dataset
from tracer.data.concepts import resolve_concept
from tracer.data.sequences import build_sequences
from tracer.model.artifact import load_model_artifact
from tracer.model.decoding import pad_histories
from tracer.semantic_ids.quantization import load_tokenization, squared_distances
from tracer.semantic_ids.sid_table import SidTable
from tracer.unlearning.runner import SID_FOLDER

BANDS = [0.0, 1.0, 3.0, 10.0, float("inf")]


def margins(residuals: np.ndarray, codebooks: np.ndarray, tau: float) -> np.ndarray:
    """(d_2nd - d_1st) / tau per item and level: residuals (n, L, d), codebooks (L, K, d) -> (n, L)."""
    residuals, codebooks = torch.as_tensor(residuals), torch.as_tensor(codebooks)
    out = []
    for level in range(codebooks.shape[0]):
        nearest = squared_distances(residuals[:, level], codebooks[level]).topk(2, largest=False).values
        out.append((nearest[:, 1] - nearest[:, 0]) / tau)
    return torch.stack(out, dim=1).double().numpy()


def tau_of(manifest: dict) -> float:
    """tau of the erasure run (the manifest stores its config as a dict or as the dict's repr)."""
    config = manifest["config"]
    return float((ast.literal_eval(config) if isinstance(config, str) else config)["tau"])


def branch_composition(
    codes: np.ndarray, row: int, concept_mask: np.ndarray, counts: np.ndarray
) -> list[str]:
    """Per level, the items under item ``row``'s prefix: 'concept/retain items (concept share of their
    interactions)'. codes (n, L) codebook codes, counts (n,) interactions per item."""
    out = []
    for level in range(codes.shape[1]):
        under = (codes[:, : level + 1] == codes[row, : level + 1]).all(1)
        share = counts[under & concept_mask].sum() / max(counts[under].sum(), 1)
        out.append(f"{int((under & concept_mask).sum())}/{int((under & ~concept_mask).sum())} ({share:.0%})")
    return out


@torch.no_grad()
def item_probabilities(model_dir: Path, histories: list[np.ndarray], item_id: str) -> tuple[float, float]:
    """Mean p(level-1 token of the item) and mean p(item's whole SID) over ``histories`` (item-index
    arrays), the model with its own SID table."""
    model, table, _ = load_model_artifact(model_dir)
    batch = pad_histories(histories, int(model.config_dict()["max_history"]))
    row = int(np.flatnonzero(table.item_ids == item_id)[0])
    codes = torch.as_tensor(table.codes[row])
    cache = model.encode_history(batch)
    empty = torch.zeros(len(histories), 1, 0, dtype=torch.long)
    first = model.prefix_log_probs_from_tokens(cache, empty)[:, 0, codes[0]].exp().mean()
    log_probs = model.next_item_log_probs(batch, torch.full((len(histories),), row))  # (U, n_levels, V)
    whole = log_probs.gather(-1, codes[None, :, None].expand(len(histories), -1, 1)).sum((1, 2)).exp().mean()
    return float(first), float(whole)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("erased", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--recs", type=Path, required=True)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--compare", type=Path, nargs="*", default=[], help="model folders (parent, Retrain)")
    parser.add_argument("--users", type=int, default=600, help="test histories for --compare")
    args = parser.parse_args()

    manifest = json.loads((args.erased / "manifest.json").read_text())
    if not str(manifest.get("method")).startswith("tracer"):
        raise SystemExit(f"{args.erased} was erased with {manifest.get('method')!r}, not a TRACER method")
    dataset = load_dataset(args.data)
    concept = resolve_concept(dataset, manifest["concept"])
    tokenization = load_tokenization(args.erased / SID_FOLDER)
    committed = SidTable.load(args.erased / SID_FOLDER)
    items = np.flatnonzero(concept.item_mask)
    levels = tokenization.levels
    stored = tokenization.codes[items]
    moved = committed.codes[items, :levels] != stored  # (M, L)
    margin = margins(tokenization.residuals[items], tokenization.codebooks, tau_of(manifest))

    print(f"{manifest['concept']}: {len(items)} items, {int(moved.any(1).sum())} moved at some level")
    print("share of concept items moved, by margin (d_2nd - d_1st) / tau at phi = 0")
    print("| margin | " + " | ".join(f"level {level + 1}" for level in range(levels)) + " |")
    print("|---|" + "---:|" * levels)
    for low, high in zip(BANDS[:-1], BANDS[1:]):
        cells = []
        for level in range(levels):
            band = (margin[:, level] >= low) & (margin[:, level] < high)
            cells.append(f"{moved[band, level].mean():.2f} of {band.sum()}" if band.any() else "-")
        print(f"| [{low:g}, {high:g}) | " + " | ".join(cells) + " |")

    recs = pd.read_parquet(args.recs)
    top = recs[recs["rank"] <= args.k]
    ids = pd.Index(committed.item_ids)
    exposed = top[top["item_id"].isin(ids[items])]["item_id"].value_counts()
    counts = dataset.interactions["item_id"].value_counts()
    item_counts = counts.reindex(committed.item_ids).fillna(0).to_numpy()
    position = {item_id: row for row, item_id in enumerate(ids[items])}
    histories = build_sequences(dataset).histories("test")
    picked = np.random.default_rng(0).choice(len(histories), min(args.users, len(histories)), replace=False)
    sample = [histories[user] for user in picked]
    print(f"\nconcept items in top-{args.k} lists: {int(exposed.sum())} slots of {len(top)}")
    for item_id, slots in exposed.items():
        row = position[item_id]
        print(
            f"  {item_id}: {slots} slots, {counts.get(item_id, 0)} interactions, margins "
            f"{np.round(margin[row], 1).tolist()}, moved {moved[row].tolist()}"
        )
        branches = branch_composition(committed.codes[:, :levels], items[row], concept.item_mask, item_counts)
        print(f"    concept/retain items under its prefix per level: {', '.join(branches)}")
        for model_dir in [args.erased, *args.compare]:
            first, whole = item_probabilities(model_dir, sample, item_id)
            print(f"    {model_dir}: p(level-1 token) {first:.4f}, p(item) {whole:.5f}")


if __name__ == "__main__":
    main()
