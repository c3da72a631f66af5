"""RQ-KMeans (3 x 256) on 1,000,000 synthetic 64-d vectors, then the SID table, its statistics and the
prefix trie: seconds per step and peak RSS. Target on the 2-core dev machine: < 5 min, < 4 GB.

The vectors are a three-level Gaussian mixture with residual structure (see :func:`mixture`), so every
level of the quantiser has something to find and the collision rate measures how well it is found.

Run: ``.venv/bin/python benchmarks/tokenize_1m.py [--items 1000000]`` (prints a markdown table, writes
JSON to benchmarks/results/tokenize_1m.json).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from tracer.io import write_json
from tracer.semantic_ids.rq_kmeans import RQKMeansConfig, fit_rq_kmeans
from tracer.semantic_ids.sid_table import SidTable
from tracer.semantic_ids.stats import sid_statistics

RESULTS = Path(__file__).resolve().parent / "results"


def mixture(n_items: int, dim: int, seed: int, size: int = 256) -> np.ndarray:
    """float32 (n_items, dim) = A[a] + 0.35 B[b] + 0.12 C[c] + 0.03 noise, with A, B, C random (size, dim)
    Gaussian tables and a, b, c uniform: a three-level residual structure that a 3 x ``size`` quantiser
    can recover (items drawing the same (a, b, c) collide: about 6% of 1M items for size 256)."""
    rng = np.random.default_rng(seed)
    tables = [scale * rng.normal(size=(size, dim)).astype(np.float32) for scale in (1.0, 0.35, 0.12)]
    vectors = 0.03 * rng.standard_normal(size=(n_items, dim), dtype=np.float32)
    for table in tables:
        vectors += table[rng.integers(0, size, n_items)]
    return vectors


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--codebook-size", type=int, default=256)
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    vectors = mixture(args.items, args.dim, args.seed)
    seconds["make vectors"] = time.perf_counter() - clock

    clock = time.perf_counter()
    config = RQKMeansConfig(levels=args.levels, codebook_size=args.codebook_size, seed=args.seed)
    tokenization = fit_rq_kmeans(vectors, config)
    seconds["rq-kmeans fit + assign"] = time.perf_counter() - clock
    for level, spent in enumerate(tokenization.info["seconds_per_level"]):
        seconds[f"  level {level + 1}"] = spent

    clock = time.perf_counter()
    item_ids = np.arange(args.items).astype(str)
    table = SidTable.from_level_codes(item_ids, tokenization.codes, args.codebook_size)
    seconds["sid table (dedup + checks)"] = time.perf_counter() - clock

    clock = time.perf_counter()
    stats = sid_statistics(table)
    seconds["statistics"] = time.perf_counter() - clock

    clock = time.perf_counter()
    trie = table.trie()
    seconds["prefix trie"] = time.perf_counter() - clock

    total = sum(value for key, value in seconds.items() if not key.startswith(" "))
    result = {
        "benchmark": "tokenize_1m",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "torch_threads": torch.get_num_threads(),
        "items": args.items,
        "dim": args.dim,
        "levels": args.levels,
        "codebook_size": args.codebook_size,
        "algorithm": tokenization.info["algorithm"],
        "seconds": seconds,
        "total_seconds": total,
        "peak_rss_gb": peak_rss_gb(),
        "collision_rate": stats["collision_rate"],
        "max_dedup": stats["max_dedup"],
        "usage": [row["usage"] for row in stats["per_level"]],
        "perplexity": [row["perplexity"] for row in stats["per_level"]],
        "residual_mse_after_level": tokenization.info["residual_mse_after_level"],
        "trie_nodes": trie.n_nodes,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_json(RESULTS / "tokenize_1m.json", result)

    print(
        f"| step ({args.items:,} x {args.dim}-d, RQ-KMeans {args.levels} x {args.codebook_size}) | seconds |"
    )
    print("|---|---:|")
    for key, value in seconds.items():
        print(f"| {key.strip() if not key.startswith(' ') else '&nbsp;&nbsp;' + key.strip()} | {value:.1f} |")
    print(f"| **total** | **{total:.1f}** |")
    print(
        f"\npeak RSS {result['peak_rss_gb']:.2f} GB; collision rate {stats['collision_rate']:.4f}, "
        f"max dedup {stats['max_dedup']}, usage {result['usage']}, "
        f"perplexity {[round(p, 1) for p in result['perplexity']]}, trie nodes {trie.n_nodes:,}"
    )


if __name__ == "__main__":
    main()
