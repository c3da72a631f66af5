"""Sequential requests: erase several concepts one after another and check that none comes back.

Each step erases the next concept from the previous step's artifact (``tracer erase`` on an erased
model, which forgets the union of every concept so far; with ``--from-root`` that union is erased from
``--parent``'s weights instead of the previous step's). After each step every concept erased so far
is measured on the test split (``--split valid`` to choose settings; Exposure@10), and retain NDCG@10
is read two ways, each on one set of users for the model and its reference:

- against a Retrain without all of the concepts (``--retrain``: ``tracer erase PARENT --method retrain
  --concept "A; B; ..."``), over the users whose test item is in none of them;
- against a Retrain without the concepts erased so far (``--step-retrain``, one per step before the
  last, in order; the last step's is ``--retrain``), over the users whose test item is in none of those.

One Retrain is a noisy reference (two Retrains of one parent differ by several points of retain
NDCG@10), so ``--also-retrain`` takes more Retrains without all of the concepts (``tracer erase ...
--method retrain --set train_seed=N``): the first reading is then also a share of the mean of them all.

The parent is measured both ways as well (step 0). The chain's last artifact then meets the attack
suite for the union of the concepts, as does the Retrain. Resumable: finished steps are reused. Writes
``sequential.json`` and ``sequential.md`` under ``--out``.

    python benchmarks/sequential_erasure.py --parent runs/ml-100k/parent \\
        --retrain runs/ml-100k/retrain-three --step-retrain runs/ml-100k/retrain-one \\
        --step-retrain runs/ml-100k/retrain-two \\
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


def retain_and_exposure(
    ranked: np.ndarray, targets: np.ndarray, erased: dict[str, np.ndarray], every: list[np.ndarray]
) -> dict:
    """Retain NDCG@10 over the users whose target is in none of ``every`` concept (``retain_ndcg@10``),
    in none of the ``erased`` ones (``retain_ndcg@10_so_far``) and in none of the first k of ``every``
    for k = 0, 1, ... (``retain_ndcg@10_by_prefix``), and Exposure@10 of each erased concept over all
    users: ranked (U, >=10) item indices, targets (U,), each mask (n_items,) bool."""

    def outside(masks) -> np.ndarray:
        inside = np.zeros(len(targets), dtype=bool)
        for mask in masks:
            inside |= mask[targets]
        return ~inside

    def retain_ndcg(users: np.ndarray) -> float:
        return float(ndcg_at_k(ranked[users], targets[users], HEADLINE_K).mean())

    return {
        "retain_ndcg@10": retain_ndcg(outside(every)),
        "retain_ndcg@10_so_far": retain_ndcg(outside(list(erased.values()))),
        "retain_ndcg@10_by_prefix": [retain_ndcg(outside(every[:k])) for k in range(len(every) + 1)],
        "exposure@10": {
            name: float(exposure_at_k(ranked, mask, HEADLINE_K).mean()) for name, mask in erased.items()
        },
    }


def measure(model_dir: Path, data_dir: Path, erased: list[str], every: list[str], split: str) -> dict:
    """:func:`retain_and_exposure` of the model at ``model_dir`` on ``split`` (test or valid)."""
    dataset = load_dataset(data_dir)
    data = build_sequences(dataset)
    masks = {name: resolve_concept(dataset, name).item_mask for name in every}
    model, sid_table, _ = load_model_artifact(model_dir)
    with torch.inference_mode():
        ranking = rank_users(model, decoding_trie(model_dir, sid_table), data, ErasureEvalConfig(split=split))
    return retain_and_exposure(
        ranking.items, data.targets(split), {name: masks[name] for name in erased}, list(masks.values())
    )


def share(row: dict, reference: dict, key: str) -> str:
    """``row``'s retain NDCG@10 under ``key`` and its share of ``reference``'s on the same users."""
    return f"{row[key]:.4f} ({100 * row[key] / reference[key]:.1f}%)"


def step_reference(result: dict, step: int, n: int) -> dict | None:
    """What step ``step`` of ``n`` is compared with on the users outside the concepts erased so far: the
    Retrain without all ``n`` after the last step, the one without the first ``step`` before it (None
    where none was given, and for the parent, step 0)."""
    if step == n:
        return result["retrain"]
    return result.get(f"retrain_step{step}") if step else None


def every_retrain(result: dict) -> list[dict]:
    """The rows of ``--retrain`` and of each ``--also-retrain``, in that order."""
    return [result["retrain"], *result.get("retrain_also", {}).values()]


def mean_retrain(result: dict) -> dict | None:
    """The mean retain NDCG@10 (users outside all the concepts) of :func:`every_retrain`, as a row for
    :func:`share`; None without ``--also-retrain``."""
    rows = every_retrain(result)
    if len(rows) == 1:
        return None
    return {"retain_ndcg@10": float(np.mean([r["retain_ndcg@10"] for r in rows]))}


def table(result: dict, concepts: list[str]) -> list[str]:
    """The markdown table of ``result``: the parent (step 0), then each step; with ``--also-retrain``
    a column against the mean of the Retrains without all the concepts, and a line naming them."""
    n = len(concepts)
    mean = mean_retrain(result)
    k = len(every_retrain(result))
    extra = f"retain NDCG@10, users outside all {n} (% of the mean of {k} Retrains without all {n}) | "
    lines = [
        f"| after step | erased | retain NDCG@10, users outside all {n} (% of Retrain without all {n}) | "
        + (extra if mean else "")
        + "retain NDCG@10, users outside those erased so far (% of Retrain without them) | "
        "the parent on those users (% of that Retrain) | "
        "Exposure@10 of each erased concept (that Retrain's) |",
        "|---|---|---:|" + ("---:|" if mean else "") + "---:|---:|---|",
    ]
    everything = result["retrain"]
    for step in range(n + 1):
        row = result["parent"] if step == 0 else result[f"step{step}"]
        reference = step_reference(result, step, n)
        so_far = parent = "-"
        if step and reference is not None:
            so_far = share(row, reference, "retain_ndcg@10_so_far")
            on_those_users = {"retain_ndcg@10_so_far": result["parent"]["retain_ndcg@10_by_prefix"][step]}
            parent = share(on_those_users, reference, "retain_ndcg@10_so_far")
        exposures = ", ".join(
            f"{name} {value:.4f} ({(reference or everything)['exposure@10'][name]:.4f})"
            for name, value in row["exposure@10"].items()
        )
        erased = "nothing (the parent)" if step == 0 else concepts[step - 1]
        every = share(row, everything, "retain_ndcg@10")
        if mean:
            every += " | " + share(row, mean, "retain_ndcg@10")
        lines.append(f"| {step} | {erased} | {every} | {so_far} | {parent} | {exposures} |")
    if mean:
        each = ", ".join(share(r, mean, "retain_ndcg@10") for r in every_retrain(result))
        lines += ["", f"The {k} Retrains without all {n}, users outside all {n} (% of their mean): {each}."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("--parent", "--retrain", "--data", "--out"):
        parser.add_argument(flag, type=Path, required=True)
    parser.add_argument("--step-retrain", type=Path, action="append", default=[],
                        help="a Retrain without the first k concepts, k = 1, 2, ... in order")  # fmt: skip
    parser.add_argument("--also-retrain", type=Path, action="append", default=[],
                        help="another Retrain without all the concepts (another seed)")  # fmt: skip
    parser.add_argument("--concept", action="append", required=True)
    parser.add_argument("--method", default="tracer")
    parser.add_argument("--set", action="append", default=[], help="key=value over the method's defaults")
    parser.add_argument(
        "--split", choices=("test", "valid"), default="test", help="valid: for choosing settings"
    )
    parser.add_argument("--from-root", action="store_true",
                        help="each request erases the union so far from --parent (--from-root)")  # fmt: skip
    args = parser.parse_args()
    if args.step_retrain and len(args.step_retrain) != len(args.concept) - 1:
        parser.error(f"--step-retrain: one per step before the last ({len(args.concept) - 1}), "
                     f"got {len(args.step_retrain)}")  # fmt: skip
    overrides = {key: yaml.safe_load(value) for key, _, value in (item.partition("=") for item in args.set)}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "sequential.json"
    result = json.loads(path.read_text()) if path.is_file() else {"split": args.split}
    if result.get("split", "test") != args.split:
        parser.error(
            f"{path} holds the {result.get('split', 'test')} split, not {args.split}: give another --out"
        )
    references = {  # key: (folder, the concepts it was retrained without)
        "parent": (args.parent, []),
        "retrain": (args.retrain, args.concept),
        **{f"retrain_step{k}": (f, args.concept[:k]) for k, f in enumerate(args.step_retrain, start=1)},
    }
    for key, (folder, erased) in references.items():
        if key not in result:
            result[key] = measure(folder, args.data, erased, args.concept, args.split)
            path.write_text(json.dumps(result, indent=2))
    measured = result.get("retrain_also", {})
    result["retrain_also"] = {}  # exactly the --also-retrain of this call, measured ones reused
    for folder in map(str, args.also_retrain):
        result["retrain_also"][folder] = measured.get(folder) or measure(
            Path(folder), args.data, args.concept, args.concept, args.split
        )
        path.write_text(json.dumps(result, indent=2))
    model = args.parent
    for step, concept in enumerate(args.concept, start=1):
        artifact = args.out / f"step{step}"
        if not artifact.is_dir():
            erase(EraseRequest(model, args.data, concept, args.method, artifact, overrides=overrides,
                               from_root=args.from_root))  # fmt: skip
        key = f"step{step}"
        if key not in result:
            result[key] = measure(artifact, args.data, args.concept[:step], args.concept, args.split)
            result[key]["seconds"] = json.loads((artifact / "manifest.json").read_text())["seconds"]
        path.write_text(json.dumps(result, indent=2))
        model = artifact
    union = "; ".join(args.concept)
    for name, folder in (("attacks_chain", model), ("attacks_retrain", args.retrain)):
        if name not in result:
            evaluation = ErasureEvalConfig(split=args.split)
            result[name] = run_attack_suite(
                folder, args.data, union, ATTACKS, evaluation, parent_dir=args.parent
            )["summary"]
            path.write_text(json.dumps(result, indent=2))
    lines = table(result, args.concept)
    lines += ["", "| attack on the union | " + " | ".join(result["attacks_chain"]) + " |",
              "|---|" + "---:|" * len(result["attacks_chain"])]  # fmt: skip
    for name in ("attacks_chain", "attacks_retrain"):
        cells = " | ".join("-" if v is None else f"{v:.4f}" for v in result[name].values())
        lines.append(f"| {name.split('_')[1]} | {cells} |")
    (args.out / "sequential.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
