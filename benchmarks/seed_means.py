"""Test metrics of several training runs per model, one per seed, as means and spreads over the seeds.

    .venv/bin/python benchmarks/seed_means.py \
        --group "causal, 4 layers=runs/ml-100k/m-cf-l4*" --group "SASRec=runs/ml-100k/sasrec-1t-s*" \
        [--reference SASRec]

Each ``--group NAME=GLOB`` names the run folders of one model (a `tracer train` or `tracer sasrec` --out
folder: its ``metrics.json`` holds the split metrics, under ``test.all`` or ``test``). Prints one markdown
row per group: the number of runs, the mean and sample standard deviation of test NDCG@10, the means of
the other test metrics and of validation NDCG@10, each run's test NDCG@10, and the mean's share of the
reference group's mean. On ML-100k one run's test NDCG@10 moves by ~0.004 between seeds, so a single
seed cannot rank two models that are within ~10% of each other.
"""

from __future__ import annotations

import argparse
import glob
import statistics
from pathlib import Path

from tracer.io import read_json


def split_metrics(metrics: dict, split: str) -> dict[str, float]:
    """The metrics of one split from a generative (``split.all``) or SASRec (``split``) metrics.json."""
    values = metrics[split]
    return values.get("all", values)


def load_group(pattern: str) -> list[dict[str, dict[str, float]]]:
    """Every run folder matching ``pattern`` that has a metrics.json -> [{"valid": ..., "test": ...}]."""
    runs = []
    for folder in sorted(glob.glob(pattern)):
        path = Path(folder) / "metrics.json"
        if path.is_file():
            metrics = read_json(path)
            runs.append({split: split_metrics(metrics, split) for split in ("valid", "test")})
    if not runs:
        raise SystemExit(f"error: no run folder with a metrics.json matches {pattern!r}; check the glob")
    return runs


def summarise(runs: list[dict[str, dict[str, float]]]) -> dict:
    """Runs of one model -> test NDCG@10 mean, sample std (nan for one run) and per-run values, the
    means of test Recall@5 / NDCG@5 / Recall@10, and the mean validation NDCG@10."""
    ndcg = [run["test"]["ndcg@10"] for run in runs]
    return {
        "runs": len(runs),
        "ndcg@10": statistics.fmean(ndcg),
        "std": statistics.stdev(ndcg) if len(ndcg) > 1 else float("nan"),
        "per_run": ndcg,
        "test_means": [
            statistics.fmean(run["test"][m] for run in runs) for m in ("recall@5", "ndcg@5", "recall@10")
        ],
        "valid_ndcg@10": statistics.fmean(run["valid"]["ndcg@10"] for run in runs),
    }


def table(groups: dict[str, list[dict]], reference: str | None) -> str:
    """Markdown table, one row per group (see the module docstring)."""
    summaries = {name: summarise(runs) for name, runs in groups.items()}
    lines = [
        "| model | runs | test N@10 mean (std) | test R@5 / N@5 / R@10 | valid N@10 | test N@10 per run |"
        + (" vs " + reference + " |" if reference else ""),
        "|---|---:|---|---|---:|---|" + ("---:|" if reference else ""),
    ]
    for name, summary in summaries.items():
        row = (
            f"| {name} | {summary['runs']} | {summary['ndcg@10']:.4f} ({summary['std']:.4f}) | "
            + " / ".join(f"{m:.4f}" for m in summary["test_means"])
            + f" | {summary['valid_ndcg@10']:.4f} | "
            + ", ".join(f"{v:.4f}" for v in summary["per_run"])
            + " |"
        )
        if reference is not None:
            row += f" {summary['ndcg@10'] / summaries[reference]['ndcg@10']:.0%} |"
        lines.append(row)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--group", action="append", required=True, help="NAME=GLOB of run folders")
    parser.add_argument("--reference", help="group name whose mean test NDCG@10 is 100%%")
    args = parser.parse_args()
    groups = {}
    for spec in args.group:
        name, sep, pattern = spec.partition("=")
        if not sep or not name or not pattern:
            raise SystemExit(
                f"error: --group {spec!r} is not NAME=GLOB; e.g. --group 'SASRec=runs/sasrec-s*'"
            )
        groups[name] = load_group(pattern)
    if args.reference is not None and args.reference not in groups:
        raise SystemExit(f"error: --reference {args.reference!r} is not one of the groups {sorted(groups)}")
    print(table(groups, args.reference))


if __name__ == "__main__":
    main()
