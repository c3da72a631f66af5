"""One setting per method from the tuning sweeps of several concepts (docs/method.md §5.1).

Each tuning sweep (`tracer sweep`, one per tuning concept and parent) holds the same trials of a method.
A trial's pooled row has as retain NDCG@10 its mean share of Retrain's over the sweeps, and as Exposure@10
its largest excess over Retrain's; :func:`tracer.unlearning.sweep.select_trial` with a Retrain exposure of
0 then picks the best mean retain share among the trials within the margin on every tuning concept, or
else the trial whose worst concept is closest to Retrain. The same rule over the baselines' picks names
the best baseline, the one the held-out grid runs beside TRACER.
"""

from __future__ import annotations

from pathlib import Path

from tracer.errors import UserError
from tracer.io import read_json
from tracer.unlearning.sweep import RULE, SWEEP_SPLIT, select_trial

POOLING = (
    "one setting per method for every tuning concept: the rule applied to each trial's mean retain "
    "NDCG@10 as a share of Retrain's over the tuning sweeps and its largest Exposure@10 above Retrain's"
)


def load_sweeps(roots: list[Path]) -> dict[str, list[dict]]:
    """method -> its sweep summaries, one per root (``ROOT/<method>/sweep.json``); only the methods swept
    under every root."""
    found: dict[str, list[dict]] = {}
    for root in roots:
        paths = sorted(Path(root).glob("*/sweep.json"))
        if not paths:
            raise UserError(f"no */sweep.json under {root}: run benchmarks/erasure_sweeps.py there first")
        for path in paths:
            summary = read_json(path)
            if summary.get("selected_on") != SWEEP_SPLIT or "retrain" not in summary:
                raise UserError(f"{path} predates the tuning protocol: rerun its sweep (cells are reused)")
            found.setdefault(path.parent.name, []).append(summary)
    return {method: sweeps for method, sweeps in found.items() if len(sweeps) == len(roots)}


def pooled_rows(sweeps: list[dict]) -> list[dict]:
    """One row per trial of a method over its sweeps (module docstring); every sweep must hold the same
    trials."""
    trials = [{row["cell"]: row for row in sweep["rows"] if row["trial"]} for sweep in sweeps]
    if any(set(t) != set(trials[0]) for t in trials):
        raise UserError(
            f"the sweeps of {sweeps[0]['method']!r} ran different trials: rerun them on one search space"
        )
    rows = []
    for cell, first in trials[0].items():
        shares = [t[cell]["retain_ndcg@10"] / s["retrain"]["retain_ndcg@10"] for t, s in zip(trials, sweeps)]
        excess = [t[cell]["exposure@10"] - s["retrain"]["exposure@10"] for t, s in zip(trials, sweeps)]
        rows.append(
            {
                "cell": cell,
                "settings": first["settings"],
                "retain_ndcg@10": sum(shares) / len(shares),
                "exposure@10": max(excess),
                "per_concept": {
                    s["concept"]: {key: t[cell][key] for key in ("retain_ndcg@10", "exposure@10", "seconds")}
                    for t, s in zip(trials, sweeps)
                },
            }
        )
    return rows


def select_picks(sweeps: dict[str, list[dict]]) -> dict:
    """The picks file: the rule, and per method its search space, trials and pooled pick; the best
    baseline (methods other than ``tracer*``) by the same rule over their picks."""
    if not sweeps:
        raise UserError("no method was swept under every folder given: finish the tuning sweeps first")
    methods = {}
    for method, summaries in sorted(sweeps.items()):
        pick = select_trial(pooled_rows(summaries), retrain_exposure=0.0)
        methods[method] = {
            "space": summaries[0]["grid"],
            "trials": summaries[0]["trials"],
            "cell": pick["cell"],
            "settings": pick["settings"],
            "retain_share": pick["retain_ndcg@10"],
            "exposure_above_retrain": pick["exposure@10"],
            "per_concept": pick["per_concept"],
        }
    baselines = [
        {"cell": m, "retain_ndcg@10": p["retain_share"], "exposure@10": p["exposure_above_retrain"]}
        for m, p in methods.items()
        if not m.startswith("tracer")
    ]
    return {
        "rule": RULE,
        "pooling": POOLING,
        "concepts": [summary["concept"] for summary in next(iter(sweeps.values()))],
        "methods": methods,
        "best_baseline": select_trial(baselines, retrain_exposure=0.0)["cell"] if baselines else None,
    }
