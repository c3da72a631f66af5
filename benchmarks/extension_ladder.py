"""The extension ladder: the paper's TRACER, then our extensions added one at a time (docs/method.md §4.10).

    .venv/bin/python -m benchmarks.extension_ladder --parent runs/ml-100k/parent \\
        --retrain runs/ml-100k/retrain --data runs/ml-100k/data --concept Horror --split test \\
        --out runs/ladder-ml100k-horror-s0

Rows, each erased once from ``--parent``: ``tracer-paper`` (Eq. 10 as written), then cumulatively
``+retain_kl`` (at tracer-anchored.yaml's weight), ``+kl_without_concept``, ``+kl_branch_shares`` and
``+coherence_anchor`` (every other setting stays tracer-paper's, lambda1 0.5 included), and
``ml-1m-selection``: ``tracer-anchored`` at configs/bench-ml1m.yaml's settings. Each is measured on
``--split`` beside Retrain like a frontier variant (benchmarks/erasure_frontier.py: retain NDCG@10,
Exposure@10, cost, the relearning curve, restore-codes, probe). Finished rows are reused, so the run resumes.
``--set key=value`` applies to every row (e.g. ``steps=2`` for a dry run on a tiny world). Writes
``ladder.md`` and ``ladder.json`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from benchmarks.erasure_frontier import frontier_table, run_variants
from tracer.pipelines.bench_config import load_bench_config
from tracer.resources import config_file
from tracer.unlearning.runner import method_defaults

# each switch the ladder adds, in order, and its value when on (None: tracer-anchored.yaml's value)
STEPS = (
    ("retain_kl", None),
    ("kl_without_concept", True),
    ("kl_branch_shares", True),
    ("coherence_anchor", True),
)


def ladder(common: dict) -> list[tuple[str, str, dict]]:
    """The rows as frontier variants ``(name, method, overrides)``; ``common`` applies to every row."""
    anchored = method_defaults("tracer-anchored")
    rows, settings = [("tracer-paper", "tracer-paper", dict(common))], {}
    for key, value in STEPS:
        settings[key] = anchored[key] if value is None else value
        rows.append((f"+{key}", "tracer-paper", {**settings, **common}))
    ml1m = load_bench_config(config_file("bench-ml1m.yaml")).method_settings["tracer-anchored"]
    rows.append(("ml-1m-selection", "tracer-anchored", {**ml1m, **common}))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for flag in ("--parent", "--retrain", "--data", "--out"):
        parser.add_argument(flag, type=Path, required=True)
    parser.add_argument("--concept", required=True)
    parser.add_argument("--split", required=True, choices=["valid", "test"])
    parser.add_argument("--set", action="append", default=[], help="key=value for every row (repeatable)")
    args = parser.parse_args()
    common = {}
    for pair in args.set:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"error: --set expects key=value, got {pair!r}")
        common[key.strip()] = yaml.safe_load(value)
    rows = run_variants(
        args.parent, args.retrain, args.data, args.concept, args.split, args.out, ladder(common)
    )
    table = frontier_table(rows, args.concept, args.split)
    (args.out / "ladder.md").write_text(table + "\n")
    (args.out / "ladder.json").write_text(json.dumps(rows, indent=2))
    print(table)


if __name__ == "__main__":
    main()
