"""One `tracer sweep` grid run on several parents (one per seed), summarised as means over the seeds.

    .venv/bin/python benchmarks/sweep_seed_means.py runs/sweeps/NAME-seed3 runs/sweeps/NAME-seed4 ... \
        [--reference retrain=runs/refvalid/seed{seed}/retrain.json ...]

Each positional folder is a sweep of one parent (its name ends in ``seed<N>``); every cell finished in
all of them gets one markdown row with the means of its validation headline metrics and its retain
NDCG@10 per seed. The parents' own validation metrics form the "parent" row; ``--reference NAME=PATTERN``
adds rows from `tracer evaluate --split valid` files (``{seed}`` is replaced by each seed), e.g. Retrain
and Filter. Selecting on a mean over several parents is what makes a small ML-100k difference readable:
one parent's validation retain NDCG@10 moves by ~0.003 between settings from noise alone.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from tracer.io import read_json

METRICS = ["retain_ndcg@10", "exposure@10", "concept_mass", "median_concept_rank"]


def seed_of(folder: Path) -> str:
    match = re.search(r"seed(\d+)$", folder.name)
    if match is None:
        raise SystemExit(f"error: {folder} does not end in seed<N>; name sweep folders NAME-seed<N>")
    return match.group(1)


def collect(folders: list[Path], references: dict[str, str]) -> dict[str, dict[str, dict]]:
    """cell name -> seed -> headline metrics."""
    rows: dict[str, dict[str, dict]] = {}
    for folder in folders:
        seed = seed_of(folder)
        for path in sorted(folder.glob("*/valid_metrics.json")):
            rows.setdefault(path.parent.name, {})[seed] = read_json(path)["headline"]
        rows.setdefault("parent", {})[seed] = read_json(folder / "parent_valid_metrics.json")["headline"]
        for name, pattern in references.items():
            path = Path(pattern.format(seed=seed))
            if path.is_file():
                rows.setdefault(name, {})[seed] = read_json(path)["headline"]
    return rows


def table(rows: dict[str, dict[str, dict]], seeds: list[str]) -> str:
    lines = [
        "| cell | " + " | ".join(METRICS) + " | retain NDCG@10 per seed (" + ", ".join(seeds) + ") |",
        "|---|" + "---:|" * (len(METRICS) + 1),
    ]
    for name, per_seed in sorted(rows.items()):
        if any(seed not in per_seed for seed in seeds):
            continue  # unfinished on some parent: a mean over fewer seeds would not compare
        means = [sum(per_seed[s][m] for s in seeds) / len(seeds) for m in METRICS]
        values = " | ".join(
            f"{v:.1f}" if m == "median_concept_rank" else f"{v:.4f}" for m, v in zip(METRICS, means)
        )
        per = " ".join(f"{per_seed[s]['retain_ndcg@10']:.4f}" for s in seeds)
        lines.append(f"| {name} | {values} | {per} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sweeps", nargs="+", type=Path, help="sweep folders, one per parent, NAME-seed<N>")
    parser.add_argument("--reference", action="append", default=[], help="NAME=PATTERN with {seed}")
    args = parser.parse_args()
    references = {}
    for entry in args.reference:
        if "=" not in entry:
            raise SystemExit(f"error: --reference {entry!r} is not NAME=PATTERN")
        name, pattern = entry.split("=", 1)
        references[name] = pattern
    missing = [str(f) for f in args.sweeps if not (f / "parent_valid_metrics.json").is_file()]
    if missing:
        raise SystemExit(
            f"error: not a finished sweep folder: {', '.join(missing)}; run `tracer sweep` first"
        )
    print(table(collect(args.sweeps, references), [seed_of(f) for f in args.sweeps]))


if __name__ == "__main__":
    main()
