"""The summary JSON of ``benchmarks/gpu_erasure.sh``: every stage's status and time, and what each
finished stage wrote (parent metrics and throughput, erasure cost, concept metrics, the attack).

Reads whatever is there, so a partial run (a stage killed at its limit, a missing parent) still gets
its summary; the missing parts are ``null``.

    python benchmarks/gpu_erasure_summary.py WORK STAGES.tsv SUMMARY.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

METHODS = ("retrain", "tracer", "npo")


def _read(path: Path) -> dict | list | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _stages(tsv: Path) -> dict:
    """``name<TAB>exit code<TAB>seconds<TAB>limit`` lines -> {name: {status, seconds, limit_s}}."""
    stages = {}
    lines = tsv.read_text().splitlines() if tsv.is_file() else []
    for name, code, seconds, limit in (line.split("\t") for line in lines if line.count("\t") == 3):
        status = {"0": "done", "124": "timeout", "137": "timeout", "skipped": "skipped"}.get(code, "failed")
        stages[name] = {"status": status, "exit": code, "seconds": float(seconds), "limit_s": float(limit)}
    return stages


def _parent(work: Path) -> dict | None:
    log, metrics = _read(work / "parent" / "train_log.json"), _read(work / "parent" / "metrics.json")
    if not log and not metrics:
        return None
    epochs = log if isinstance(log, list) else []
    targets = sum(entry["targets"] for entry in epochs)
    seconds = sum(entry["train_seconds"] for entry in epochs)
    return {
        "epochs": len(epochs),
        "targets_per_second": targets / seconds if seconds else None,
        "test": (metrics or {}).get("test", {}).get("all"),
    }


def _method(work: Path, method: str) -> dict:
    manifest = _read(work / method / "manifest.json") or {}
    steps = (manifest.get("config") or {}).get("steps")
    seconds = manifest.get("seconds")
    evaluation = _read(work / f"eval-{method}.json") or {}
    attack = _read(work / f"attack-{method}.json") or {}
    return {
        "seconds": seconds,
        "steps": steps,
        "steps_per_second": steps / seconds if steps and seconds else None,
        "headline": evaluation.get("headline"),
        "test_ndcg@10": (evaluation.get("all") or {}).get("ndcg@10"),
        "attack": (attack.get("relearning") or {}).get("points"),  # exposure@10 after 0..N steps
    }


def summarize(work: Path, tsv: Path) -> dict:
    methods = {method: _method(work, method) for method in METHODS}
    retrain = methods["retrain"]["seconds"]
    for method in ("tracer", "npo"):
        seconds = methods[method]["seconds"]
        methods[method]["seconds_vs_retrain"] = seconds / retrain if seconds and retrain else None
    return {"stages": _stages(tsv), "parent": _parent(work), "methods": methods}


def main(argv: list[str]) -> None:
    work, tsv, out = map(Path, argv)
    out.write_text(json.dumps(summarize(work, tsv), indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
