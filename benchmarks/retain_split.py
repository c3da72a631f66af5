"""Where an erasure's retain utility goes: NDCG@10 of the retain users' held-out targets, split by
whether the target shares its level-1 code with an item of the concept (the parent's codes).

Each ``--cell`` names one parent's rankings (``tracer evaluate ... --rankings R.parquet``), the first
of them the reference (Retrain); cells are pooled by summing each group's NDCG over users, and every
model is reported as a share of the reference's sum in each group.

    python benchmarks/retain_split.py --data runs/ml-100k/data --sids runs/ml-100k/sids --split valid \\
        --cell "Horror" retrain=R0.parquet filter=F0.parquet tracer-deep=D0.parquet \\
        --cell "Horror" retrain=R1.parquet filter=F1.parquet tracer-deep=D1.parquet ...
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

GROUPS = ("shared", "other")


def retain_targets(data: Path, sids: Path, concept: str, split: str) -> pd.DataFrame:
    """The split's (user_id, item_id) rows whose item is outside ``concept``, with ``shared``: True where
    the item's level-1 code (``sids``, the parent's table) is also a concept item's."""
    items = pd.read_parquet(data / "items.parquet")
    members = set(items.item_id[items.concepts.apply(lambda names: concept in list(names))])
    first = pd.read_parquet(sids / "sids.parquet").set_index("item_id").c1
    concept_codes = set(first[list(members)])
    targets = pd.read_parquet(data / f"{split}.parquet")
    targets = targets[~targets.item_id.isin(members)].copy()
    targets["shared"] = targets.item_id.map(first).isin(concept_codes)
    return targets


def ndcg_at_10(targets: pd.DataFrame, rankings: pd.DataFrame) -> np.ndarray:
    """NDCG@10 per target row (one held-out item per user): 1 / log2(rank + 1) when ranked in the top 10."""
    top = rankings.loc[rankings["rank"] <= 10, ["user_id", "item_id", "rank"]]
    ranks = targets.merge(top, on=["user_id", "item_id"], how="left")["rank"].to_numpy(dtype=float)
    return np.where(np.isnan(ranks), 0.0, 1.0 / np.log2(np.nan_to_num(ranks, nan=1.0) + 1.0))


def group_sums(targets: pd.DataFrame, models: dict[str, Path]) -> dict[str, dict[str, float]]:
    """{model: {group: summed NDCG@10, ``n_<group>``: users}} of one cell."""
    shared = targets["shared"].to_numpy()
    sums = {}
    for name, path in models.items():
        gains = ndcg_at_10(targets, pd.read_parquet(path))
        sums[name] = {"shared": float(gains[shared].sum()), "other": float(gains[~shared].sum())}
        sums[name].update(n_shared=int(shared.sum()), n_other=int((~shared).sum()))
    return sums


def pooled_table(cells: list[tuple[str, dict[str, dict[str, float]]]]) -> str:
    """Markdown: per model and group, the pooled NDCG sum as % of the reference (each cell's first model)."""
    names = list(cells[0][1])
    reference = names[0]
    total = {name: {g: sum(c[name][g] for _, c in cells) for g in GROUPS} for name in names}
    users = {g: sum(c[reference][f"n_{g}"] for _, c in cells) for g in GROUPS}
    lines = [
        f"| model | shared level-1 code ({users['shared']} users) | other targets ({users['other']} users) |",
        "|---|---:|---:|",
    ]
    for name in names:
        cols = [f"{100 * total[name][g] / total[reference][g]:.1f}%" for g in GROUPS]
        lines.append(f"| {name} | {cols[0]} | {cols[1]} |")
    mean = {g: total[reference][g] / users[g] for g in GROUPS}
    lines.append(f"| ({reference}'s NDCG@10) | {mean['shared']:.4f} | {mean['other']:.4f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--sids", type=Path, required=True, help="the parents' SID folder (`tracer sids`)")
    parser.add_argument("--split", choices=("valid", "test"), default="valid")
    parser.add_argument(
        "--cell",
        nargs="+",
        action="append",
        required=True,
        metavar="CONCEPT NAME=RANKINGS",
        help="a concept, then name=path per model",
    )
    args = parser.parse_args(argv)
    cells = []
    for concept, *pairs in args.cell:
        models = dict(pair.split("=", 1) for pair in pairs)
        if not models:
            parser.error(f"--cell {concept}: name at least one model as name=rankings.parquet")
        models = {name: Path(path) for name, path in models.items()}
        cells.append((concept, group_sums(retain_targets(args.data, args.sids, concept, args.split), models)))
    if len({tuple(c) for _, c in cells}) != 1:
        parser.error("every --cell must name the same models in the same order")
    print(pooled_table(cells))


if __name__ == "__main__":
    main()
