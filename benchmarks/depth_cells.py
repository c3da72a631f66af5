"""Issue 23's bar, judged per cell (dataset x concept, mean over seeds) from finished frontier folders.

Each folder is one ``benchmarks/erasure_frontier.py --out`` run (one parent and its Retrain, one
concept, one split); its ``<variant>.json`` rows and ``retrain.json`` are read, nothing is run. A cell
groups the folders given with the same ``--cell`` name; every bar is judged on the mean over its seeds:

- relearning Exposure@10 (64 examples, 50 steps) <= 1.1 x Retrain's + 0.01;
- the relearning curve (25/50/100/200 steps) at or below Retrain's at >= 3 of the 4 step counts;
- restore-codes Exposure@10 <= 0.005; probe AUC <= Retrain's + 0.02;
- retain NDCG@10 >= 97% of Retrain's; Exposure@10 <= Retrain's + 0.0005; cost <= 10% of Retrain's.

    python benchmarks/depth_cells.py --cell "ML-100k Horror" runs/frontier-horror-s0 \\
        runs/frontier-horror-s1 --cell "ML-100k Children's" runs/frontier-childrens-s0 ... \\
        --variant deep --out table.md

A ``--variant`` may pool several finished variants with ``+``: ``--variant deep+deep-e1+deep-e2``
judges the rows of all three in every folder together, e.g. the same setting erased with more than one
erasure seed (``erasure_frontier.py --variant "deep-e1=tracer-deep:seed=1"``), so that a cell's mean
carries less of one erasure's noise; the ``seeds`` column then counts every (folder, variant) row.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

BARS = ("attack", "curve", "restore", "probe", "retain", "exposure", "cost")


def load_rows(folder: Path, variant: str) -> tuple[dict, dict] | None:
    """(variant row, Retrain row) of one frontier folder, or None when the variant has not finished."""
    row, reference = folder / f"{variant}.json", folder / "retrain.json"
    if not (row.is_file() and reference.is_file()):
        return None
    return json.loads(row.read_text()), json.loads(reference.read_text())


def pooled_rows(folders: list[Path], variant: str) -> list[tuple[dict, dict]]:
    """Every finished (variant row, Retrain row) of ``folders`` for each name in ``variant`` split on "+"
    (a leading "+" belongs to the first name: the extension ladder's rows are called "+retain_kl", ...)."""
    pairs = (load_rows(folder, name) for name in re.split(r"(?<!^)\+", variant) for folder in folders)
    return [pair for pair in pairs if pair is not None]


def judge(pairs: list[tuple[dict, dict]]) -> dict:
    """Mean-over-seeds values and a pass flag per bar for one cell. ``pairs``: (variant, Retrain) rows."""

    def mean(key: str, which: int) -> float:
        return float(np.mean([pair[which][key] for pair in pairs]))

    curve = np.mean([pair[0]["curve_64"] for pair in pairs], axis=0)
    retrain_curve = np.mean([pair[1]["curve_64"] for pair in pairs], axis=0)
    shares = [100 * row["retain_ndcg@10"] / ref["retain_ndcg@10"] for row, ref in pairs]
    costs = [100 * row["seconds"] / ref["seconds"] for row, ref in pairs]
    values = {
        "seeds": len(pairs),
        "attack": mean("attack_exposure@10", 0),
        "attack_retrain": mean("attack_exposure@10", 1),
        "curve_at_or_below": int(np.sum(curve <= retrain_curve + 1e-12)),
        "restore": mean("restore_exposure@10", 0),
        "probe": mean("probe_auc", 0),
        "probe_retrain": mean("probe_auc", 1),
        # the probe on the architecture untrained (Retrain's rows: the parent's SID table); None in rows
        # written before the frontier kept it
        "probe_floor": mean("probe_untrained_auc", 1)
        if all("probe_untrained_auc" in ref for _, ref in pairs)
        else None,
        "retain_share": 100 * mean("retain_ndcg@10", 0) / mean("retain_ndcg@10", 1),
        "retain_share_spread": (min(shares), max(shares)),
        "exposure": mean("exposure@10", 0),
        "exposure_retrain": mean("exposure@10", 1),
        "cost": float(np.mean(costs)),
    }
    values["pass"] = {
        "attack": values["attack"] <= 1.1 * values["attack_retrain"] + 0.01,
        "curve": values["curve_at_or_below"] >= 3,
        "restore": values["restore"] <= 0.005,
        "probe": values["probe"] <= values["probe_retrain"] + 0.02,
        "retain": values["retain_share"] >= 97.0,
        "exposure": values["exposure"] <= values["exposure_retrain"] + 0.0005,
        "cost": values["cost"] <= 10.0,
    }
    return values


def cell_line(cell: str, variant: str, v: dict) -> str:
    mark = {bar: ("" if v["pass"][bar] else " ✗") for bar in BARS}
    low, high = v["retain_share_spread"]
    floor = "" if v["probe_floor"] is None else f" (untrained {v['probe_floor']:.3f})"
    return (
        f"| {cell} | {variant} | {v['seeds']} | "
        f"{v['attack']:.3f} vs {v['attack_retrain']:.3f}{mark['attack']} | "
        f"{v['curve_at_or_below']}/4{mark['curve']} | {v['restore']:.4f}{mark['restore']} | "
        f"{v['probe']:.3f} vs {v['probe_retrain']:.3f}{mark['probe']}{floor} | "
        f"{v['retain_share']:.1f}% ({low:.1f}-{high:.1f}){mark['retain']} | "
        f"{v['exposure']:.4f}{mark['exposure']} | {v['cost']:.1f}%{mark['cost']} | "
        f"{sum(v['pass'].values())}/{len(BARS)} |"
    )


HEADER = (
    "| cell | variant | seeds | relearning @50 vs Retrain | curve <= Retrain | restore-codes | probe AUC vs "
    "Retrain | retain NDCG@10, % of Retrain (seed range) | Exposure@10 | cost, % of Retrain | bars met |\n"
    "|---|---|---:|---|---:|---:|---|---|---:|---:|---:|"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", nargs="+", action="append", required=True, metavar=("NAME", "FOLDER"))
    parser.add_argument("--variant", action="append", required=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    lines = [HEADER]
    for name, *folders in args.cell:
        for variant in args.variant:
            pairs = pooled_rows([Path(f) for f in folders], variant)
            if pairs:
                lines.append(cell_line(name, variant, judge(pairs)))
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
