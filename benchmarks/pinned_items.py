"""Which concept items TRACER's commit moved, against how firmly each sat on its stored codes, and
which concept items still reach users' top-10 lists.

    .venv/bin/python benchmarks/pinned_items.py ERASED --data DATA --recs RECS.parquet [--k 10]

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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("erased", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--recs", type=Path, required=True)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()

    manifest = json.loads((args.erased / "manifest.json").read_text())
    if manifest.get("method") != "tracer":
        raise SystemExit(f"{args.erased} was erased with {manifest.get('method')!r}, not tracer")
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
    position = {item_id: row for row, item_id in enumerate(ids[items])}
    print(f"\nconcept items in top-{args.k} lists: {int(exposed.sum())} slots of {len(top)}")
    for item_id, slots in exposed.items():
        row = position[item_id]
        print(
            f"  {item_id}: {slots} slots, {counts.get(item_id, 0)} interactions, margins "
            f"{np.round(margin[row], 1).tolist()}, moved {moved[row].tolist()}"
        )


if __name__ == "__main__":
    main()
