"""A resumable tuning sweep of one erasure method, selected on the VALIDATION split (docs/method.md §5.1).

Every cell is an erasure of the same parent, evaluated on validation next to the parent and to Retrain
of that parent. The trials are the cells of the method's search space (``configs/unlearning/sweeps.yaml``:
every training method has the same number); :func:`select_trial` is the one rule that picks among them.
The method's defaults are one more cell, reported next to the pick but not a trial.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tracer.errors import UserError
from tracer.evaluation.erasure import ErasureEvalConfig, evaluate_erasure
from tracer.io import read_json, sha256_tree, write_json, write_parquet
from tracer.resources import config_file
from tracer.typed_config import read_yaml
from tracer.unlearning.runner import EraseRequest, erase

SWEEPS_FILE = config_file("unlearning", "sweeps.yaml")
SWEEP_SPLIT = "valid"  # selection never sees the test split
EXPOSURE_MARGIN = 0.0005  # a trial qualifies with validation Exposure@10 <= Retrain's + this
RULE = (
    f"the highest validation retain NDCG@10 among the trials whose validation Exposure@10 is at most "
    f"Retrain's + {EXPOSURE_MARGIN}; if none qualifies, the lowest Exposure@10 (ties: the higher retain "
    "NDCG@10)"
)


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
    retrain_dir: Path | None = None  # Retrain of model_dir for concept; None: OUT/retrain
    references_dir: Path | None = None  # where the parent's and Retrain's metrics are cached; None: OUT


def search_spaces() -> tuple[int, dict[str, dict[str, list]]]:
    """``(trials, method -> grid)`` of sweeps.yaml; UserError unless every grid has ``trials`` cells."""
    raw = read_yaml(SWEEPS_FILE, "the tuning search spaces") or {}
    trials, spaces = raw.get("trials"), raw.get("spaces") or {}
    if not isinstance(trials, int) or not isinstance(spaces, dict):
        raise UserError(f"{SWEEPS_FILE} must set trials (a whole number) and spaces (method: grid)")
    wrong = {method: len(trial_settings(grid)) for method, grid in spaces.items()}
    wrong = {method: count for method, count in wrong.items() if count != trials}
    if wrong:
        raise UserError(f"{SWEEPS_FILE}: every space must have {trials} trials; these do not: {wrong}")
    return trials, spaces


def default_grid(method: str) -> dict[str, list]:
    """The method's search space in sweeps.yaml ({} if it has none)."""
    return search_spaces()[1].get(method) or {}


def trial_settings(grid: dict[str, list]) -> list[dict]:
    """Every cell of ``grid`` (key -> values), keys sorted; [] for an empty grid."""
    if not grid:
        return []
    keys = sorted(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def cell_name(settings: dict) -> str:
    return "default" if not settings else "-".join(f"{k}={v}" for k, v in sorted(settings.items()))


def select_trial(rows: list[dict], retrain_exposure: float) -> dict:
    """The selection rule of every tuning sweep (:data:`RULE`) over rows holding ``retain_ndcg@10`` and
    ``exposure@10``; the first row wins a tie among the qualifying ones."""
    if not rows:
        raise UserError("there is no trial to select from: the search space is empty")
    qualified = [row for row in rows if row["exposure@10"] <= retrain_exposure + EXPOSURE_MARGIN]
    if qualified:
        return max(qualified, key=lambda row: row["retain_ndcg@10"])
    return min(rows, key=lambda row: (row["exposure@10"], -row["retain_ndcg@10"]))


def _evaluated(model_dir: Path, request: SweepRequest, config: ErasureEvalConfig, cache: Path) -> dict:
    if cache.is_file():
        return read_json(cache)
    metrics, _ = evaluate_erasure(model_dir, request.data_dir, request.concept, config, request.device)
    write_json(cache, metrics)
    return metrics


def _erased(request: SweepRequest, method: str, settings: dict, folder: Path) -> Path:
    if not (folder / "manifest.json").is_file():
        erase(
            EraseRequest(
                model_dir=request.model_dir,
                data_dir=request.data_dir,
                concept=request.concept,
                method=method,
                out=folder,
                overrides=settings,
                seed=request.seed,
                overwrite=True,
                device=request.device,
            )
        )
    return folder


def _retrain(request: SweepRequest) -> Path:
    """Retrain of the parent for the concept: reused when present (checked), trained otherwise."""
    folder = _erased(request, "retrain", {}, request.retrain_dir or request.out / "retrain")
    manifest = read_json(folder / "manifest.json")
    found = (manifest["method"], manifest["concept"], manifest["parent_sha256"])
    if found != ("retrain", request.concept, sha256_tree(request.model_dir)):
        raise UserError(
            f"{folder} is not Retrain of {request.model_dir} for {request.concept!r} (its manifest: "
            f"{manifest['method']} of {manifest['parent']} for {manifest['concept']!r}): fix --retrain"
        )
    return folder


def run_sweep(request: SweepRequest) -> dict:
    grid = request.grid if request.grid is not None else default_grid(request.method)
    trials = trial_settings(grid)
    if not trials:
        raise UserError(f"{request.method!r} has no search space in {SWEEPS_FILE}: pass --grid key=v1,v2")
    evaluation = ErasureEvalConfig(split=SWEEP_SPLIT, seed=request.seed)
    request.out.mkdir(parents=True, exist_ok=True)
    references = request.references_dir or request.out  # shared by the sweeps of one parent and concept
    references.mkdir(parents=True, exist_ok=True)
    parent = _evaluated(request.model_dir, request, evaluation, references / "parent_valid_metrics.json")
    retrain = _evaluated(_retrain(request), request, evaluation, references / "retrain_valid_metrics.json")
    rows = []
    for index, settings in enumerate([{}, *trials]):
        folder = _erased(request, request.method, settings, request.out / cell_name(settings))
        metrics = _evaluated(folder, request, evaluation, folder / "valid_metrics.json")
        rows.append(
            {
                "cell": folder.name,
                "trial": index > 0,
                "settings": settings,
                **metrics["headline"],
                "seconds": metrics["cost"]["seconds"],
            }
        )
    retrain_exposure = retrain["headline"]["exposure@10"]
    best = select_trial([row for row in rows if row["trial"]], retrain_exposure)
    table = pd.DataFrame(rows).assign(
        qualifies=lambda t: t["exposure@10"] <= retrain_exposure + EXPOSURE_MARGIN,
        picked=lambda t: t["cell"] == best["cell"],
    )
    write_parquet(request.out / "sweep.parquet", table.assign(settings=table["settings"].map(str)))
    summary = {
        "method": request.method,
        "concept": request.concept,
        "selected_on": SWEEP_SPLIT,
        "rule": RULE,
        "grid": grid,
        "trials": len(trials),
        "parent": parent["headline"],
        "retrain": {**retrain["headline"], "seconds": retrain["cost"]["seconds"]},
        "default": rows[0],
        "best": best,
        "rows": rows,
        "table": table.drop(columns=["settings"]).to_string(index=False, float_format=lambda v: f"{v:.4f}"),
    }
    write_json(request.out / "sweep.json", summary)
    return summary
