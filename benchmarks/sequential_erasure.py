"""Sequential requests: erase several concepts one after another and check that none comes back.

Each step erases the next concept from the previous step's artifact (``tracer erase`` on an erased
model). After each step every concept erased so far is measured on the test split (Exposure@10), with
retain NDCG@10 over the users whose test item is in none of the concepts, against a Retrain without all
of them (``--retrain``: ``tracer erase PARENT --method retrain --concept "A; B; ..."``). The chain's last
artifact then meets the attack suite for the union of the concepts, as does the Retrain. Resumable:
finished steps are reused. Writes ``sequential.json`` and ``sequential.md`` under ``--out``.

    python benchmarks/sequential_erasure.py --parent runs/ml-100k/parent \\
        --retrain runs/ml-100k/retrain-five \\
        --data runs/ml-100k/data --concept Horror --concept "Children's" --concept Sci-Fi --out runs/chain \\
        [--method tracer-no-mask --set forget_kl=3 ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import yaml

from tracer.attacks.suite import AttackSuiteConfig, run_attack_suite
from tracer.data.artifact import load_dataset
from tracer.data.concepts import resolve_concept
from tracer.data.sequences import build_sequences
from tracer.evaluation.erasure import HEADLINE_K, ErasureEvalConfig, rank_users
from tracer.evaluation.evaluate import decoding_trie
from tracer.evaluation.metrics import exposure_at_k, ndcg_at_k
from tracer.model.artifact import load_model_artifact
from tracer.unlearning.runner import EraseRequest, erase

ATTACKS = AttackSuiteConfig(examples=(64,), steps=(25, 50, 100, 200), benign_steps=200)


def measure(model_dir: Path, data_dir: Path, concepts: list[str]) -> dict:
    """Exposure@10 of each concept over all test users, retain NDCG@10 over users outside all of them."""
    dataset = load_dataset(data_dir)
    data = build_sequences(dataset)
    masks = {name: resolve_concept(dataset, name).item_mask for name in concepts}
    model, sid_table, _ = load_model_artifact(model_dir)
    with torch.inference_mode():
        ranking = rank_users(model, decoding_trie(model_dir, sid_table), data, ErasureEvalConfig())
    targets = data.targets("test")
    retain_users = ~np.any([mask[targets] for mask in masks.values()], axis=0)
    return {
        "retain_ndcg@10": float(
            ndcg_at_k(ranking.items[retain_users], targets[retain_users], HEADLINE_K).mean()
        ),
        "exposure@10": {
            name: float(exposure_at_k(ranking.items, mask, HEADLINE_K).mean()) for name, mask in masks.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("--parent", "--retrain", "--data", "--out"):
        parser.add_argument(flag, type=Path, required=True)
    parser.add_argument("--concept", action="append", required=True)
    parser.add_argument("--method", default="tracer")
    parser.add_argument("--set", action="append", default=[], help="key=value over the method's defaults")
    args = parser.parse_args()
    overrides = {key: yaml.safe_load(value) for key, _, value in (item.partition("=") for item in args.set)}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "sequential.json"
    result = json.loads(path.read_text()) if path.is_file() else {}
    if "retrain" not in result:
        result["retrain"] = measure(args.retrain, args.data, args.concept)
    model = args.parent
    for step, concept in enumerate(args.concept, start=1):
        artifact = args.out / f"step{step}"
        if not artifact.is_dir():
            erase(EraseRequest(model, args.data, concept, args.method, artifact, overrides=overrides))
        key = f"step{step}"
        if key not in result:
            result[key] = measure(artifact, args.data, args.concept[:step])
            result[key]["seconds"] = json.loads((artifact / "manifest.json").read_text())["seconds"]
        path.write_text(json.dumps(result, indent=2))
        model = artifact
    union = "; ".join(args.concept)
    for name, folder in (("attacks_chain", model), ("attacks_retrain", args.retrain)):
        if name not in result:
            result[name] = run_attack_suite(folder, args.data, union, ATTACKS, parent_dir=args.parent)[
                "summary"
            ]
            path.write_text(json.dumps(result, indent=2))
    reference = result["retrain"]
    lines = [
        f"| after step | erased | retain NDCG@10 (% of Retrain without all {len(args.concept)}) | "
        "Exposure@10 of each erased concept (Retrain's) |",
        "|---|---|---:|---|",
    ]
    for step, concept in enumerate(args.concept, start=1):
        row = result[f"step{step}"]
        share = 100 * row["retain_ndcg@10"] / reference["retain_ndcg@10"]
        exposures = ", ".join(
            f"{name} {value:.4f} ({reference['exposure@10'][name]:.4f})"
            for name, value in row["exposure@10"].items()
        )
        lines.append(f"| {step} | {concept} | {row['retain_ndcg@10']:.4f} ({share:.1f}%) | {exposures} |")
    lines += ["", "| attack on the union | " + " | ".join(result["attacks_chain"]) + " |",
              "|---|" + "---:|" * len(result["attacks_chain"])]  # fmt: skip
    for name in ("attacks_chain", "attacks_retrain"):
        cells = " | ".join("-" if v is None else f"{v:.4f}" for v in result[name].values())
        lines.append(f"| {name.split('_')[1]} | {cells} |")
    (args.out / "sequential.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
