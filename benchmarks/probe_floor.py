"""The probe against its chance level: per cell, the untrained floor, Retrain and the un-erased parent.

Reads finished ``tracer attack ... --attacks probe --out FILE.json`` results (nothing is run). A cell
names the files of its parents and of their Retrains; each file's ``probe`` section holds the model's
``auc`` and ``untrained_auc`` (the same probe on the architecture at a fresh initialisation). The table
shows the floor, Retrain and the parent (means over the files, each file in brackets) and issue 23's
probe bar, Retrain's mean + 0.02, with whether the un-erased parent already meets it:

    python benchmarks/probe_floor.py \\
        --cell "ML-100k Horror" --parents runs/probe-floor/100k-s{0,1,2}-horror-parent.json \\
        --retrains runs/probe-floor/100k-s{0,1,2}-horror-retrain-horror.json \\
        --cell "ML-1M Horror" --parents ... --retrains ... --out table.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

PROBE_MARGIN = 0.02  # issue 23: probe AUC <= Retrain's + 0.02


def probe_aucs(files: list[Path]) -> tuple[list[float], list[float]]:
    """(model AUCs, untrained AUCs) of attack result files, in the order given."""
    probes = [json.loads(Path(file).read_text())["probe"] for file in files]
    return [p["auc"] for p in probes], [p["untrained_auc"] for p in probes]


def cell_row(name: str, parents: list[Path], retrains: list[Path]) -> dict:
    """One cell's numbers: means over its files, every file's value, the bar and the parent's verdict."""
    parent, parent_floor = probe_aucs(parents)
    retrain, retrain_floor = probe_aucs(retrains)
    bar = float(np.mean(retrain)) + PROBE_MARGIN
    return {
        "cell": name,
        "untrained": float(np.mean(parent_floor + retrain_floor)),
        "retrain": float(np.mean(retrain)),
        "retrains": retrain,
        "parent": float(np.mean(parent)),
        "parents": parent,
        "bar": bar,
        "parent_meets_bar": float(np.mean(parent)) <= bar,
    }


def table(rows: list[dict]) -> str:
    """A markdown table, one line per cell."""
    lines = [
        "| cell | untrained model | Retrain (per parent) | the parent, concept kept (per parent) "
        "| bar (Retrain's + 0.02) | the parent meets the bar |",
        "|---|---:|---|---|---:|---|",
    ]
    for row in rows:
        each = {key: " / ".join(f"{value:.3f}" for value in row[key]) for key in ("retrains", "parents")}
        lines.append(
            f"| {row['cell']} | {row['untrained']:.3f} | {row['retrain']:.3f} ({each['retrains']}) "
            f"| {row['parent']:.3f} ({each['parents']}) | {row['bar']:.3f} "
            f"| {'yes' if row['parent_meets_bar'] else 'no'} |"
        )
    return "\n".join(lines)


def parse_cells(argv: list[str] | None) -> tuple[list[tuple[str, list[Path], list[Path]]], Path | None]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", action="append", required=True, help="a cell's name; its files follow")
    parser.add_argument("--parents", action="append", nargs="+", type=Path, required=True)
    parser.add_argument("--retrains", action="append", nargs="+", type=Path, required=True)
    parser.add_argument("--out", type=Path, help="also write the table here")
    args = parser.parse_args(argv)
    if not len(args.cell) == len(args.parents) == len(args.retrains):
        parser.error("give --parents and --retrains once after every --cell")
    return list(zip(args.cell, args.parents, args.retrains, strict=True)), args.out


def main(argv: list[str] | None = None) -> str:
    cells, out = parse_cells(argv)
    text = table([cell_row(name, parents, retrains) for name, parents, retrains in cells])
    print(text)
    if out is not None:
        out.write_text(text + "\n")
    return text


if __name__ == "__main__":
    main()
