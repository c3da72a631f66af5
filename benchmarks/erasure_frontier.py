"""Depth against utility: erase one concept with several TRACER settings and attack every artifact.

For one parent and its Retrain, each named variant (``--variant NAME=key=value,key=value``, on top of a
method's YAML defaults) is erased once and measured on the chosen split: retain NDCG@10, Exposure@10,
cost, and the attack suite (relearning curve with 64 forget examples at 25/50/100/200 steps, restore-codes,
probe). Retrain is measured the same way and every row is also given as a share of it. Finished
variants are reused (the folder is resumable). Writes ``frontier.json``, ``frontier.md`` and
``frontier.png`` (attack exposure against retain NDCG@10) under ``--out``.

    python benchmarks/erasure_frontier.py --parent runs/ml-100k/parent --retrain runs/ml-100k/retrain \\
        --data runs/ml-100k/data --concept Horror --split valid --out runs/frontier-horror \\
        --variant tracer=tracer: --variant anchored=tracer-anchored: --variant no-mask=tracer-no-mask:
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import yaml  # noqa: E402

from tracer.attacks.suite import AttackSuiteConfig, run_attack_suite  # noqa: E402
from tracer.evaluation.erasure import ErasureEvalConfig, evaluate_erasure  # noqa: E402
from tracer.unlearning.runner import EraseRequest, erase  # noqa: E402

ATTACKS = AttackSuiteConfig(
    attacks=("relearning", "restore_codes", "probe"), examples=(64,), steps=(25, 50, 100, 200)
)


def parse_variant(text: str) -> tuple[str, str, dict]:
    """``NAME=METHOD:key=value,key=value`` -> (name, method, overrides)."""
    name, _, rest = text.partition("=")
    method, _, pairs = rest.partition(":")
    overrides = {}
    for pair in filter(None, pairs.split(",")):
        key, _, value = pair.partition("=")
        overrides[key.strip()] = yaml.safe_load(value)
    if not name or not method:
        raise argparse.ArgumentTypeError(f"expected NAME=METHOD:key=value,..., got {text!r}")
    return name, method, overrides


def measure(
    model_dir: Path, data: Path, concept: str, parent: Path, evaluation: ErasureEvalConfig, cache: Path
) -> dict:
    """Retain NDCG@10, Exposure@10, concept mass, cost and the attack suite of one artifact; cached."""
    if cache.is_file():
        return json.loads(cache.read_text())
    metrics, _ = evaluate_erasure(model_dir, data, concept, evaluation)
    attacks = run_attack_suite(model_dir, data, concept, ATTACKS, evaluation, parent_dir=parent)
    curve = [p["exposure@10"] for p in attacks["relearning"]["points"] if p["steps"] > 0]
    row = {
        "retain_ndcg@10": metrics["headline"]["retain_ndcg@10"],
        "exposure@10": metrics["headline"]["exposure@10"],
        "concept_mass": metrics["headline"]["concept_mass"],
        "seconds": metrics["cost"]["seconds"],
        "curve_64": curve,
        **attacks["summary"],
        "probe_untrained_auc": attacks["probe"]["untrained_auc"],  # the probe's chance level
    }
    cache.write_text(json.dumps(row, indent=2))
    return row


def run_variants(
    parent: Path,
    retrain: Path,
    data: Path,
    concept: str,
    split: str,
    out: Path,
    variants: list[tuple[str, str, dict]],
    report_only: bool = False,
) -> dict[str, dict]:
    """Retrain's row and each variant's ``(name, method, overrides)``: erased from ``parent`` into
    ``out/artifacts/<name>`` and measured on ``split``; finished variants are reused (a variant whose
    settings changed since is refused). ``report_only``: the finished variants only."""
    out.mkdir(parents=True, exist_ok=True)
    evaluation = ErasureEvalConfig(split=split)
    rows = {"retrain": measure(retrain, data, concept, parent, evaluation, out / "retrain.json")}
    for name, method, overrides in variants:
        cache = out / f"{name}.json"
        if report_only and not cache.is_file():
            continue
        settings = {"method": method, **overrides}
        if cache.is_file() and json.loads(cache.read_text()).get("settings", settings) != settings:
            raise SystemExit(
                f"error: {cache} was measured with other settings: delete it and {out / 'artifacts' / name}"
            )
        artifact = out / "artifacts" / name
        if not artifact.is_dir():
            erase(EraseRequest(parent, data, concept, method, artifact, overrides=overrides))
        rows[name] = {**measure(artifact, data, concept, parent, evaluation, cache), "settings": settings}
        cache.write_text(json.dumps(rows[name], indent=2))
    return rows


def frontier_table(rows: dict[str, dict], concept: str, split: str) -> str:
    """The markdown table of :func:`run_variants`' rows, each also as a share of Retrain's."""
    reference = rows["retrain"]
    lines = [
        f"Concept {concept}, split {split}; relearning: 64 forget examples, "
        "Exposure@10 at 25/50/100/200 steps.",
        "",
        "| variant | retain NDCG@10 (% Retrain) | Exposure@10 | attack @50 | curve 25/50/100/200 "
        "| restore | probe AUC | time (% Retrain) |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for name, row in rows.items():
        share = 100 * row["retain_ndcg@10"] / reference["retain_ndcg@10"]
        cost = 100 * (row["seconds"] or 0) / reference["seconds"] if reference["seconds"] else float("nan")
        curve = " / ".join(f"{v:.3f}" for v in row["curve_64"])
        restore = row["restore_exposure@10"]  # None: skipped (a Retrain on rebuilt SIDs re-keyed nothing)
        restore = "-" if restore is None else f"{restore:.4f}"
        lines.append(
            f"| {name} | {row['retain_ndcg@10']:.4f} ({share:.1f}%) | {row['exposure@10']:.4f} | "
            f"{row['attack_exposure@10']:.3f} | {curve} | {restore} | "
            f"{row['probe_auc']:.3f} | {cost:.1f}% |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("--parent", "--retrain", "--data", "--out"):
        parser.add_argument(flag, type=Path, required=True)
    parser.add_argument("--concept", required=True)
    parser.add_argument("--split", default="valid", choices=["valid", "test"])
    parser.add_argument("--variant", action="append", default=[], type=parse_variant)
    parser.add_argument("--report-only", action="store_true", help="Tables and plot of finished rows only.")
    args = parser.parse_args()
    variants = args.variant  # (name, method, overrides), parsed by parse_variant
    rows = run_variants(
        args.parent, args.retrain, args.data, args.concept, args.split, args.out, variants, args.report_only
    )
    table = frontier_table(rows, args.concept, args.split)
    (args.out / "frontier.md").write_text(table + "\n")
    (args.out / "frontier.json").write_text(json.dumps(rows, indent=2))
    figure, axes = plt.subplots(figsize=(6, 4.5))
    for name, row in rows.items():
        axes.scatter(
            row["attack_exposure@10"], row["retain_ndcg@10"], marker="*" if name == "retrain" else "o"
        )
        axes.annotate(name, (row["attack_exposure@10"], row["retain_ndcg@10"]), fontsize=7)
    axes.set_xlabel("Exposure@10 after the relearning attack (64 examples, 50 steps)")
    axes.set_ylabel("retain NDCG@10")
    axes.set_title(f"Depth against utility: {args.concept} ({args.split})")
    figure.tight_layout()
    figure.savefig(args.out / "frontier.png", dpi=120)
    print(table)


if __name__ == "__main__":
    main()
