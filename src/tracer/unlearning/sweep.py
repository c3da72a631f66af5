"""A small, resumable tuning sweep of one erasure method, selected on the VALIDATION split.

Every cell is an erasure of the same parent with one setting of the grid, evaluated on validation.
Score (higher is better): the retain NDCG@10 kept relative to the parent minus the Exposure@10 left
relative to the parent. The default setting (the method's config file) is always one of the cells, so
both the default and the best are reported.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from tracer.errors import UserError
from tracer.evaluation.erasure import ErasureEvalConfig, evaluate_erasure
from tracer.io import read_json, write_json, write_parquet
from tracer.resources import config_file
from tracer.unlearning.runner import EraseRequest, erase

SWEEPS_FILE = config_file("unlearning", "sweeps.yaml")


@dataclass(frozen=True)
class SweepRequest:
    model_dir: Path
    data_dir: Path
    concept: str
    method: str
    out: Path
    grid: dict[str, list] | None = None
    seed: int = 0
    device: str = "cpu"


def default_grid(method: str) -> dict[str, list]:
    grids = yaml.safe_load(SWEEPS_FILE.read_text()) or {}
    return grids.get(method) or {}


def cell_name(settings: dict) -> str:
    return "default" if not settings else "-".join(f"{k}={v}" for k, v in sorted(settings.items()))


def sweep_score(metrics: dict, parent: dict) -> float:
    kept = metrics["headline"]["retain_ndcg@10"] / max(parent["headline"]["retain_ndcg@10"], 1e-12)
    left = metrics["headline"]["exposure@10"] / max(parent["headline"]["exposure@10"], 1e-12)
    return kept - left


def _evaluated(folder: Path, request: SweepRequest, config: ErasureEvalConfig) -> dict:
    path = folder / "valid_metrics.json"
    if path.is_file():
        return read_json(path)
    metrics, _ = evaluate_erasure(folder, request.data_dir, request.concept, config, request.device)
    write_json(path, metrics)
    return metrics


def run_sweep(request: SweepRequest) -> dict:
    grid = request.grid if request.grid is not None else default_grid(request.method)
    keys = sorted(grid)
    settings_list = [{}] + [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]
    evaluation = ErasureEvalConfig(split="valid", seed=request.seed)
    request.out.mkdir(parents=True, exist_ok=True)
    parent = _evaluated_parent(request, evaluation)
    rows = []
    for settings in settings_list:
        folder = request.out / cell_name(settings)
        if not (folder / "manifest.json").is_file():
            erase(
                EraseRequest(
                    model_dir=request.model_dir,
                    data_dir=request.data_dir,
                    concept=request.concept,
                    method=request.method,
                    out=folder,
                    overrides=settings,
                    seed=request.seed,
                    overwrite=True,
                    device=request.device,
                )
            )
        metrics = _evaluated(folder, request, evaluation)
        rows.append(
            {
                "cell": folder.name,
                "settings": settings,
                **metrics["headline"],
                "seconds": metrics["cost"]["seconds"],
                "score": sweep_score(metrics, parent),
            }
        )
    if not rows:
        raise UserError(f"the sweep grid of {request.method!r} is empty")
    table = pd.DataFrame(rows)
    write_parquet(request.out / "sweep.parquet", table.assign(settings=table["settings"].map(str)))
    best = max(rows, key=lambda row: row["score"])
    summary = {
        "method": request.method,
        "concept": request.concept,
        "selected_on": "valid",
        "parent": parent["headline"],
        "default": rows[0],
        "best": best,
        "rows": rows,
        "table": table.drop(columns=["settings"]).to_string(index=False, float_format=lambda v: f"{v:.4f}"),
    }
    write_json(request.out / "sweep.json", summary)
    return summary


def _evaluated_parent(request: SweepRequest, evaluation: ErasureEvalConfig) -> dict:
    path = request.out / "parent_valid_metrics.json"
    if path.is_file():
        return read_json(path)
    metrics, _ = evaluate_erasure(
        request.model_dir, request.data_dir, request.concept, evaluation, request.device
    )
    write_json(path, metrics)
    return metrics
