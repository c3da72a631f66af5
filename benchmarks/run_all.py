"""`make bench`: run every speed benchmark, then rebuild BENCHMARKS.md from benchmarks/results/*.md.

Each benchmark script prints a markdown table and saves JSON under benchmarks/results/; its own
markdown write-up (command, machine, date, ratios) lives in benchmarks/results/<topic>.md. This script
prepares ML-100k + its SIDs for the training benchmark (under bench-out/), runs the scripts one after the
other, and assembles BENCHMARKS.md in a fixed order.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "bench-out"
# BENCHMARKS.md sections, in order: results/<name>.md
SECTIONS = ["erasure_depth", "erasure", "sids", "training", "sasrec", "decoding", "scaling"]
HEADER = """# Benchmarks

Every number below comes from a script in `benchmarks/` or a `tracer` command, given next to it, on
the project's 2-core x86_64 CPU machine (24 GiB, no GPU) unless a section says otherwise. These machines
are noisy (and during the first session they were shared by several jobs at once), so comparisons are
ratios measured in one run. `make bench` reruns the speed benchmarks and rebuilds this file from
`benchmarks/results/*.md`.
"""


def run(*args: str) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run(args, cwd=ROOT, check=True)


def tracer(*args: str) -> None:
    run(sys.executable, "-m", "tracer.cli", *args)


def run_benchmarks() -> None:
    data, sids = WORK / "ml-100k" / "data", WORK / "ml-100k" / "sids"
    if not (data / "manifest.json").is_file():
        tracer("prepare", "--dataset", "ml-100k", "--out", str(data), "--overwrite")
    if not (sids / "stats.json").is_file():
        tracer("sids", str(data), "--method", "rq-kmeans", "--out", str(sids), "--overwrite")
    run(sys.executable, "benchmarks/decoding_speed.py")
    run(sys.executable, "benchmarks/tokenize_1m.py")
    run(sys.executable, "benchmarks/train_flops.py", "--data", str(data), "--sids", str(sids),
        "--preset", "ml-100k", "--backbone", "causal", "--runs", str(WORK / "training"))  # fmt: skip


def assemble() -> Path:
    parts = [HEADER]
    for name in SECTIONS:
        path = ROOT / "docs" / "benchmarks" / f"{name}.md"
        if path.is_file():
            text = path.read_text().strip()
            parts.append(
                "\n".join("#" + line if line.startswith("#") else line for line in text.splitlines())
            )
    target = ROOT / "BENCHMARKS.md"
    target.write_text("\n\n".join(parts) + "\n")
    return target


if __name__ == "__main__":
    if "--assemble-only" not in sys.argv:
        run_benchmarks()
    print(f"wrote {assemble()}")
