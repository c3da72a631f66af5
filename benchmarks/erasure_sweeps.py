"""Every erasure method's tuning sweep on one parent model, and the default-vs-best table.

    .venv/bin/python benchmarks/erasure_sweeps.py MODEL --data DATA --concept Horror --out runs/sweeps/NAME

Runs `tracer sweep` (grids of configs/unlearning/sweeps.yaml, each selected on the VALIDATION split)
for each method in turn; finished cells are reused, so an interrupted run resumes. Prints one markdown
row per method with its default and its best cell (valid retain NDCG@10, Exposure@10, concept mass,
seconds) and saves the table to OUT/summary.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tracer.unlearning.sweep import SweepRequest, run_sweep

BASELINES = ["finetune", "ga", "graddiff", "npo", "simnpo", "rmu", "tracer"]


def row(method: str, summary: dict) -> str:
    def cell(entry: dict) -> str:
        return (
            f"{entry['retain_ndcg@10']:.4f} / {entry['exposure@10']:.4f} / {entry['concept_mass']:.4f} / "
            f"{entry['seconds']:.0f}"
        )

    best = summary["best"]
    settings = ", ".join(f"{k}={v}" for k, v in sorted(best["settings"].items())) or "(default)"
    return (
        f"| {method} | {len(summary['rows'])} | {cell(summary['default'])} "
        f"| {summary['default']['score']:.3f} | {settings} | {cell(best)} | {best['score']:.3f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--concept", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--methods", nargs="+", default=BASELINES)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    lines = [
        "| method | cells | default: retain NDCG@10 / Exposure@10 / mass / s | score | best setting "
        "| best: retain NDCG@10 / Exposure@10 / mass / s | score |",
        "|---|---:|---|---:|---|---|---:|",
    ]
    for method in args.methods:
        summary = run_sweep(
            SweepRequest(args.model, args.data, args.concept, method, args.out / method, seed=args.seed)
        )
        lines.append(row(method, summary))
        print(lines[-1], flush=True)
    parent = summary["parent"]
    lines.append(
        f"\nParent (valid): retain NDCG@10 {parent['retain_ndcg@10']:.4f}, Exposure@10 "
        f"{parent['exposure@10']:.4f}, concept mass {parent['concept_mass']:.4f}."
    )
    text = "\n".join(lines) + "\n"
    (args.out / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
