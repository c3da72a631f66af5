"""How far apart two Retrains of one parent are: the noise of the reference behind every "% of Retrain".

    python benchmarks/retrain_noise.py --parent runs/ml-100k-s0/parent --data runs/ml-100k/data \\
        --concept Horror --retrain runs/ml-100k-s0/retrain-horror --seeds 100 \\
        --compare tracer-deep=runs/frontier-horror-s0/artifacts/tracer-deep --out runs/retrain-noise/horror-s0

Retrain trains from scratch with its parent's training config and seed (docs/method.md §3), so one
Retrain is one draw of a random training run. For each of ``--seeds`` this trains Retrain once more with
that training seed (``--set train_seed=SEED``). Every model is then evaluated on the
validation and the test split. Prints one markdown row per model and split (the given Retrain is
``retrain``, the others ``retrain2``, ``retrain3``, ... in the order of ``--seeds``): retain NDCG@10, its
share of the given Retrain's and of the mean over all Retrains, and Exposure@10; saves OUT/noise.json.
Finished Retrains and evaluations are reused.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tracer.evaluation.erasure import ErasureEvalConfig, evaluate_erasure
from tracer.io import read_json, write_json
from tracer.unlearning.runner import EraseRequest, erase

SPLITS = ("valid", "test")


def retrained(args: argparse.Namespace, seed: int) -> Path:
    out = args.out / f"retrain-seed{seed}"
    if not (out / "manifest.json").is_file():
        erase(EraseRequest(model_dir=args.parent, data_dir=args.data, concept=args.concept, method="retrain",
                           out=out, overrides={"train_seed": seed}, overwrite=True))  # fmt: skip
    return out


def headline(args: argparse.Namespace, name: str, model: Path, split: str) -> dict:
    cache = args.out / f"{name}-{split}.json"
    if not cache.is_file():
        metrics, _ = evaluate_erasure(model, args.data, args.concept, ErasureEvalConfig(split=split), "cpu")
        write_json(cache, metrics["headline"])
    return read_json(cache)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parent", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--concept", required=True)
    parser.add_argument("--retrain", type=Path, required=True, help="the parent's own Retrain")
    parser.add_argument("--seeds", type=int, nargs="+", required=True, help="training seeds of more Retrains")
    parser.add_argument(
        "--compare", nargs="*", default=[], metavar="NAME=MODEL", help="erased models to place"
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    retrains = {"retrain": args.retrain} | {
        f"retrain{i}": retrained(args, s) for i, s in enumerate(args.seeds, 2)
    }
    models = retrains | dict(entry.split("=", 1) for entry in args.compare)
    rows = []
    print("| model | split | retain NDCG@10 | % of Retrain | % of the Retrains' mean | Exposure@10 |")
    print("|---|---|---:|---:|---:|---:|")
    for split in SPLITS:
        scores = {name: headline(args, name, Path(model), split) for name, model in models.items()}
        mean = float(np.mean([scores[name]["retain_ndcg@10"] for name in retrains]))
        for name, score in scores.items():
            retain = score["retain_ndcg@10"]
            row = {
                "model": name,
                "split": split,
                "retain_ndcg@10": retain,
                "exposure@10": score["exposure@10"],
                "of_retrain": retain / scores["retrain"]["retain_ndcg@10"],
                "of_retrain_mean": retain / mean,
                "retrains_mean": mean,
            }
            rows.append(row)
            print(f"| {name} | {split} | {retain:.4f} | {100 * row['of_retrain']:.1f}% | "
                  f"{100 * row['of_retrain_mean']:.1f}% | {row['exposure@10']:.4f} |")  # fmt: skip
    write_json(args.out / "noise.json", {"parent": str(args.parent), "concept": args.concept, "rows": rows})


if __name__ == "__main__":
    main()
