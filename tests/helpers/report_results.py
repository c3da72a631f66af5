"""Synthetic bench results (three seeds, two dataset/concept pairs) for the report tests."""

from __future__ import annotations

import json
from pathlib import Path

from tracer.reporting.results import METRICS

SEEDS = (0, 1, 2)


SEED_OFFSETS = (-0.001, 0.0, 0.001)  # mean of the offsets is 0: each method's seed mean is its base value


EVIL_TITLE = '<script>alert("x")</script> & Co'


BASE = {
    "original": {
        "retain_ndcg@10": 0.090,
        "exposure@10": 0.200,
        "concept_mass": 0.30,
        "median_concept_rank": 3.0,
    },
    "retrain": {
        "retain_ndcg@10": 0.085,
        "exposure@10": 0.002,
        "concept_mass": 0.01,
        "median_concept_rank": 400.0,
    },
    "tracer": {
        "retain_ndcg@10": 0.070,
        "exposure@10": 0.020,
        "concept_mass": 0.05,
        "median_concept_rank": 120.0,
    },
    "ga": {"retain_ndcg@10": 0.080, "exposure@10": 0.060, "concept_mass": 0.12, "median_concept_rank": 40.0},
}


def synthetic_rows(dataset: str = "ml-100k", concept: str = "Horror") -> list[dict]:
    rows = []
    for method, base in BASE.items():
        reference = method in ("original", "retrain")
        for seed, offset in zip(SEEDS, SEED_OFFSETS, strict=True):
            row = {metric: 0.5 + offset for metric in METRICS}
            row.update({metric: value + offset for metric, value in base.items()})
            row.update(dataset=dataset, concept=concept, method=method, seed=seed)
            row["seconds"] = (
                None if method == "original" else {"retrain": 900.0, "tracer": 30.0, "ga": 12.0}[method]
            )
            row["params_updated"] = None if method == "original" else 1000 + seed
            row["gap_exposure@10"] = 0.0 if reference else 0.01 + offset
            row["top10_overlap"] = None if reference else 0.6 + offset
            row["attack_exposure@10"] = None
            rows.append(row)
    return rows


def item(title: str, is_concept: bool) -> dict:
    return {"title": title, "is_concept": is_concept}


def synthetic_results(second_pair: bool = True) -> dict:
    rows = synthetic_rows()
    if second_pair:
        rows += synthetic_rows(dataset="ml-1m", concept="Comedy")
    examples = [
        {
            "dataset": "ml-100k",
            "concept": "Horror",
            "user_id": user,
            "history": [
                item(EVIL_TITLE, True),
                item(f"Quiet Drama {user}", False),
                item("Scream (1996)", True),
            ],
            "recommendations": {
                method: [item(f"{method} pick {rank}", rank % 3 == 0) for rank in range(10)]
                for method in ("tracer", "original", "retrain")
            },
        }
        for user in (7, 42)
    ]
    return {
        "meta": {
            "created": "2026-01-01T00:00:00",
            "machine": "test <box>",
            "command": "tracer run",
            "text_variant": "title",
        },
        "rows": rows,
        "entanglement": {"ml-100k|Horror": {"before": [0.63, 0.09, 0.0], "after": [0.20, 0.02, 0.0]}},
        "examples": examples,
    }


def write_results(folder: Path, results: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results))
    return folder
