"""A small, fair tuning sweep of the SASRec baseline, selected on VALIDATION NDCG@10.

Every cell trains ``tracer.training.sasrec_train.train_sasrec`` (same split, same metric functions and
full-catalogue ranking as the generative models) and appends one JSON row to
``benchmarks/results/sasrec_tune_<dataset>.jsonl``; finished cells are skipped on a rerun (resumable).
Prints a markdown table sorted by validation NDCG@10 (test metrics shown, never used to choose).

    python -m benchmarks.sasrec_tune --data runs/ml-100k/data
    python -m benchmarks.sasrec_tune --data runs/ml-1m/data --cells-from \\
        benchmarks/results/sasrec_tune_ml-100k.jsonl --top 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import platform
import time
from pathlib import Path

import torch

from tracer.data.artifact import load_dataset
from tracer.data.sequences import build_sequences
from tracer.io import atomic_path
from tracer.training.sasrec_train import SELECTION_METRIC, SASRecSettings, train_sasrec

RESULTS = Path(__file__).resolve().parent / "results"

#: The grid (everything else stays at the configs/sasrec.yaml defaults: 2 layers, 2 heads, CE loss,
#: batch 128 windows, AdamW without weight decay).
GRID = {
    "model.hidden_size": [64, 128],
    "model.dropout": [0.2, 0.5],
    "train.lr": [1e-3, 3e-3],
    "model.max_len": [50, 200],
}
FIXED = {"model.n_layers": 2, "train.loss": "ce"}


def cell_key(cell: dict) -> str:
    return ",".join(f"{name}={cell[name]}" for name in sorted(cell))


def grid_cells() -> list[dict]:
    names = list(GRID)
    return [
        dict(zip(names, values, strict=True)) for values in itertools.product(*(GRID[name] for name in names))
    ]


def read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append_row(path: Path, row: dict) -> None:
    """Rewrite the JSONL file with one more row (atomic: temp file + rename)."""
    rows = [*read_rows(path), row]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))


def best_cells(path: Path, top: int) -> list[dict]:
    """The ``top`` cells of an earlier sweep by validation NDCG@10."""
    rows = sorted(read_rows(path), key=lambda r: r["valid"][SELECTION_METRIC], reverse=True)
    if not rows:
        raise SystemExit(f"no finished cells in {path}")
    return [row["cell"] for row in rows[:top]]


def run_cell(data, cell: dict, args: argparse.Namespace) -> dict:
    overrides = {
        **FIXED,
        **cell,
        "train.max_epochs": args.max_epochs,
        "train.patience": args.patience,
        "train.min_epochs": args.min_epochs,
    }
    settings = SASRecSettings().with_overrides(overrides)
    started, cpu_started = time.perf_counter(), time.process_time()
    result = train_sasrec(data, settings, seed=args.seed, progress=not args.quiet)
    return {
        "cell": cell,
        "key": cell_key(cell),
        "settings": settings.to_dict(),
        "seed": args.seed,
        "valid": result.valid,
        "test": result.test,
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.log),
        "stopped_early": len(result.log) < args.max_epochs,
        "train_seconds": round(result.train_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(time.process_time() - cpu_started, 1),  # wall time is inflated on a shared CPU
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor()}".strip(),
        "torch": torch.__version__,
        "date": dt.datetime.now().isoformat(timespec="seconds"),
    }


def markdown_table(rows: list[dict]) -> str:
    rows = sorted(rows, key=lambda r: r["valid"][SELECTION_METRIC], reverse=True)
    lines = [
        "| hidden | dropout | lr | max_len | valid R@10 | valid N@10 | test R@5 | test N@5 | test R@10 "
        "| test N@10 | best ep / run | train s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for rank, row in enumerate(rows):
        cell, valid, test = row["cell"], row["valid"], row["test"]
        mark = " **(best)**" if rank == 0 else ""
        lines.append(
            f"| {cell['model.hidden_size']} | {cell['model.dropout']} | {cell['train.lr']} | "
            f"{cell['model.max_len']}{mark} | {valid['recall@10']:.4f} | {valid['ndcg@10']:.4f} | "
            f"{test['recall@5']:.4f} | {test['ndcg@5']:.4f} | "
            f"{test['recall@10']:.4f} | {test['ndcg@10']:.4f} | "
            f"{row['best_epoch']} / {row['epochs_run']} | {row['train_seconds']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="prepared dataset folder")
    parser.add_argument("--name", help="dataset name in the results file (default: manifest source)")
    parser.add_argument("--cells-from", type=Path, help="run the best cells of this earlier sweep instead")
    parser.add_argument("--top", type=int, default=1, help="how many cells --cells-from takes")
    parser.add_argument("--max-cells", type=int, help="stop after this many new cells (budget)")
    parser.add_argument("--max-epochs", type=int, default=100)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--min-epochs", type=int, default=20, help="no early stop before this epoch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 was fastest on a shared CPU)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    dataset = load_dataset(args.data)
    name = args.name or dataset.manifest.get("source", args.data.name)
    data = build_sequences(dataset)
    path = RESULTS / f"sasrec_tune_{name}.jsonl"
    cells = best_cells(args.cells_from, args.top) if args.cells_from else grid_cells()
    done = {row["key"] for row in read_rows(path)}
    todo = [cell for cell in cells if cell_key(cell) not in done][: args.max_cells]
    print(
        f"{name}: {len(cells)} cells, {len(cells) - len(todo)} already done, running {len(todo)}", flush=True
    )
    for cell in todo:
        row = run_cell(data, cell, args)
        append_row(path, row)
        print(
            f"{row['key']}: valid ndcg@10 {row['valid']['ndcg@10']:.4f} ({row['train_seconds']} s)",
            flush=True,
        )
    print(markdown_table(read_rows(path)))


if __name__ == "__main__":
    main()
