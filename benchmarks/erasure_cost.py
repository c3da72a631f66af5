"""Cost under equal load: erasures of one parent timed one after another, as shares of Retrain's time.

Issue 23's cost bar compares an erasure's seconds with Retrain's "on the same machine under the same
load". Timings taken by grids that share the cores unevenly cannot be compared, so this script runs the
named variants (``--variant NAME=METHOD:key=value,...``, as in ``erasure_frontier.py``; one of them must
use the method ``retrain``) in turn, round after round (A B C, A B C, ...), so that a change of load
during the run touches every variant alike. Each time is the manifest's ``seconds`` (the erasure
itself, without imports and writing). Finished runs are reused (``OUT/runs/NAME-rK``). Writes
``OUT/cost.json`` and ``OUT/cost.md``; run it with nothing else on the machine, one thread per job:

    OMP_NUM_THREADS=1 python -m benchmarks.erasure_cost --parent runs/ml-100k-s1/parent \\
        --data runs/ml-100k/data --concept Horror --seed 1 --rounds 2 --out runs/cost \\
        --variant retrain=retrain: --variant tracer-anchored=tracer-anchored: --variant tracer=tracer:
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from benchmarks.erasure_frontier import parse_variant
from tracer.errors import UserError
from tracer.io import atomic_path, read_json, write_json
from tracer.unlearning.runner import EraseRequest, erase

REFERENCE_METHOD = "retrain"


def timed_runs(args: argparse.Namespace, variants: list[tuple[str, str, dict]]) -> dict[str, list[float]]:
    """Seconds of each variant's erasures, in the order run: ``args.rounds`` rounds over every variant."""
    seconds: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    for round_index in range(args.rounds):
        for name, method, overrides in variants:
            folder = args.out / "runs" / f"{name}-r{round_index}"
            if not (folder / "manifest.json").is_file():
                request = EraseRequest(
                    args.parent, args.data, args.concept, method, folder, overrides=overrides, seed=args.seed
                )
                erase(request)
            seconds[name].append(float(read_json(folder / "manifest.json")["seconds"]))
            print(f"round {round_index + 1}/{args.rounds}  {name}: {seconds[name][-1]:.1f} s", flush=True)
    return seconds


def cost_rows(seconds: dict[str, list[float]], reference: str) -> list[dict]:
    """Per variant: its runs' seconds, their median, and that median as a percentage of the median of
    the ``reference`` variant's runs."""
    base = statistics.median(seconds[reference])
    return [
        {
            "variant": name,
            "seconds": runs,
            "median_seconds": statistics.median(runs),
            "percent_of_retrain": 100 * statistics.median(runs) / base,
        }
        for name, runs in seconds.items()
    ]


def cost_table(rows: list[dict]) -> str:
    """The markdown table of :func:`cost_rows`."""
    lines = ["| variant | seconds per run | median | % of Retrain |", "|---|---|---:|---:|"]
    for row in rows:
        runs = ", ".join(f"{value:.1f}" for value in row["seconds"])
        lines.append(
            f"| {row['variant']} | {runs} | {row['median_seconds']:.1f} | {row['percent_of_retrain']:.1f}% |"
        )
    return "\n".join(lines)


def reference_name(variants: list[tuple[str, str, dict]]) -> str | None:
    """The name of the one variant that runs Retrain; None when there is not exactly one."""
    names = [name for name, method, _ in variants if method == REFERENCE_METHOD]
    return names[0] if len(names) == 1 else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("--parent", "--data", "--out"):
        parser.add_argument(flag, type=Path, required=True)
    parser.add_argument("--concept", required=True)
    parser.add_argument("--seed", type=int, default=0, help="Every erasure's seed.")
    parser.add_argument("--rounds", type=int, default=2, help="Runs of each variant, interleaved.")
    parser.add_argument(
        "--variant", action="append", default=[], type=parse_variant, help="NAME=METHOD:key=value,..."
    )
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    variants = args.variant
    if len({name for name, _, _ in variants}) != len(variants):
        parser.error("two --variant share a name: give each its own")
    reference = reference_name(variants)
    if reference is None:
        parser.error(f"name exactly one --variant with the method {REFERENCE_METHOD} (e.g. retrain=retrain:)")
    try:
        seconds = timed_runs(args, variants)
    except UserError as error:
        parser.exit(2, f"error: {error}\n")
    rows = cost_rows(seconds, reference)
    table = cost_table(rows)
    write_json(args.out / "cost.json", {"concept": args.concept, "seed": args.seed, "rows": rows})
    with atomic_path(args.out / "cost.md") as tmp:
        tmp.write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
