"""Every training method's tuning sweep on one parent model and concept, and the default-vs-pick table.

    .venv/bin/python benchmarks/erasure_sweeps.py MODEL --data DATA --concept Horror --out runs/tune/NAME

Runs `tracer sweep` (the search spaces of configs/unlearning/sweeps.yaml, the same number of trials for
every method, each picked on the VALIDATION split by one rule, docs/method.md §5.1) for each method in
turn, all against one Retrain of MODEL (--retrain, or OUT/retrain trained once); the parent and Retrain
are evaluated once for all methods (OUT/*_valid_metrics.json) and finished cells are reused, so an
interrupted run resumes. Prints one markdown row per method with its default and its picked cell (valid
retain NDCG@10, Exposure@10, concept mass, seconds) and saves the table to OUT/summary.md. `tracer picks`
combines such folders of the tuning concepts into a held-out grid's settings.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tracer.unlearning.sweep import SweepRequest, run_sweep, search_spaces


def row(method: str, summary: dict) -> str:
    def cell(entry: dict) -> str:
        return (
            f"{entry['retain_ndcg@10']:.4f} / {entry['exposure@10']:.4f} / {entry['concept_mass']:.4f} / "
            f"{entry['seconds']:.0f}"
        )

    best = summary["best"]
    settings = ", ".join(f"{k}={v}" for k, v in sorted(best["settings"].items()))
    return f"| {method} | {summary['trials']} | {cell(summary['default'])} | {settings} | {cell(best)} |"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--concept", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--methods", nargs="+", default=list(search_spaces()[1]), help="default: all")
    parser.add_argument("--retrain", type=Path, help="Retrain of MODEL (default: OUT/retrain, trained once)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    lines = [
        "| method | trials | default: retain NDCG@10 / Exposure@10 / mass / s | picked setting "
        "| picked: retain NDCG@10 / Exposure@10 / mass / s |",
        "|---|---:|---|---|---|",
    ]
    for method in args.methods:
        request = SweepRequest(args.model, args.data, args.concept, method, args.out / method,
                               seed=args.seed, retrain_dir=args.retrain or args.out / "retrain",
                               references_dir=args.out)  # fmt: skip
        summary = run_sweep(request)
        lines.append(row(method, summary))
        print(lines[-1], flush=True)
    for name in ("parent", "retrain"):
        ref = summary[name]
        lines.append(
            f"\n{name.title()} (valid): retain NDCG@10 {ref['retain_ndcg@10']:.4f}, Exposure@10 "
            f"{ref['exposure@10']:.4f}, concept mass {ref['concept_mass']:.4f}."
        )
    lines.append(f"\nRule: {summary['rule']}.")
    text = "\n".join(lines) + "\n"
    (args.out / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
