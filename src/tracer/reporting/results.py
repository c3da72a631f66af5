"""Load a results folder (``DIR/results.json``), validate its schema and aggregate over seeds.

``results.json`` holds ``meta`` (dict), ``rows`` (one dict per dataset x concept x method x seed),
optional ``entanglement`` (``"<dataset>|<concept>" -> {"before": [...], "after": [...]}``, one float per
SID level) and optional ``examples`` (concept-fan users with their history and each method's top-10).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tracer.attacks.suite import ATTACK_METRICS
from tracer.errors import UserError
from tracer.evaluation.erasure import HEADLINE_METRICS as ERASURE_HEADLINE

KEY_COLUMNS = ("dataset", "concept", "method")
ROW_IDENTITY = (*KEY_COLUMNS, "seed")
# The two metrics the trade-off plot needs: a row without them cannot be reported.
REQUIRED_METRICS = ("retain_ndcg@10", "exposure@10")

HIGHER_IS_BETTER = ("retain_ndcg@10", "retain_recall@10", "median_concept_rank", "top10_overlap")
LOWER_IS_BETTER = (
    "forget_recall@10",
    "forget_ndcg@10",
    "exposure@10",
    "exposure_fans@10",
    "concept_mass",
    "gap_retain_ndcg@10",
    "gap_exposure@10",
    "attack_exposure@10",
    "seconds",
    "params_updated",
    *ATTACK_METRICS,  # every attack-suite number: lower is closer to a model that never learned
)
# Table order: utility and forgetting (the evaluation's headline), gap to Retrain, robustness, cost.
METRICS = (
    *ERASURE_HEADLINE,
    "gap_retain_ndcg@10",
    "gap_exposure@10",
    "top10_overlap",
    "attack_exposure@10",
    "seconds",
    "params_updated",
)
# every number a row may carry: the table's metrics and the attack panel's
ROW_METRICS = tuple(dict.fromkeys([*METRICS, *ATTACK_METRICS]))
HEADLINE_METRICS = ("retain_ndcg@10", "exposure@10", "concept_mass", "seconds")
REFERENCE_METHODS = ("original", "retrain")
HEADLINE_ORDER = ("original", "retrain", "tracer")


def higher_is_better(metric: str) -> bool:
    return metric in HIGHER_IS_BETTER


@dataclass(frozen=True)
class Entanglement:
    """Share of concept items whose SID prefix (levels 1..l) is shared with a retain item, per level l."""

    before: list[float]
    after: list[float]


@dataclass(frozen=True)
class Results:
    """The parsed results folder. ``rows``: one row per (dataset, concept, method, seed); every name in
    METRICS is a float column (NaN where the run wrote null or left the metric out)."""

    folder: Path
    meta: dict[str, Any]
    rows: pd.DataFrame
    entanglement: dict[tuple[str, str], Entanglement]
    examples: list[dict[str, Any]]

    def pairs(self) -> list[tuple[str, str]]:
        """The (dataset, concept) pairs, sorted."""
        return sorted(set(zip(self.rows["dataset"], self.rows["concept"], strict=True)))


def load_results(folder: str | Path) -> Results:
    """Read and validate ``folder/results.json``; raises UserError naming what is missing or wrong."""
    folder = Path(folder)
    path = folder / "results.json"
    if not path.is_file():
        raise UserError(f"no results.json in {folder}: pass the folder the experiment runs wrote")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path} is not valid JSON ({error}): rerun the runs that write it") from error
    _require_keys(raw, ("meta", "rows"), f"{path}")
    if not isinstance(raw["meta"], dict):
        raise UserError(f"{path}: 'meta' must be an object")
    results = Results(
        folder=folder,
        meta=raw["meta"],
        rows=_parse_rows(raw["rows"], path),
        entanglement=_parse_entanglement(raw.get("entanglement") or {}, path),
        examples=_parse_examples(raw.get("examples") or [], path),
    )
    _check_pairs_exist(results, path)
    return results


def _check_pairs_exist(results: Results, path: Path) -> None:
    """Entanglement and examples must name a (dataset, concept) that has rows (catches spelling slips)."""
    known = set(results.pairs())
    named = [("entanglement", pair) for pair in results.entanglement]
    named += [("examples", (example["dataset"], example["concept"])) for example in results.examples]
    for where, pair in named:
        if pair not in known:
            choices = ["|".join(p) for p in sorted(known)]
            raise UserError(
                f"{path}: {where} names dataset|concept {'|'.join(pair)!r} that has no rows: "
                f"fix its spelling to one of {choices}"
            )


def _require_keys(obj: Any, keys: tuple[str, ...], where: str) -> None:
    if not isinstance(obj, dict):
        raise UserError(f"{where}: expected an object, got {type(obj).__name__}")
    for key in keys:
        if key not in obj:
            raise UserError(f"{where}: missing key {key!r}: the results writer must include it")


def _number(value: Any, where: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserError(f"{where}: expected a number or null, got {value!r}")
    return float(value)


def _parse_rows(rows: Any, path: Path) -> pd.DataFrame:
    if not isinstance(rows, list) or not rows:
        raise UserError(f"{path}: 'rows' must be a non-empty list of result rows")
    records = []
    for index, row in enumerate(rows):
        where = f"{path}: rows[{index}]"
        _require_keys(row, (*ROW_IDENTITY, *REQUIRED_METRICS), where)
        for key in KEY_COLUMNS:
            if not isinstance(row[key], str) or not row[key]:
                raise UserError(f"{where}: {key!r} must be a non-empty string, got {row[key]!r}")
        if isinstance(row["seed"], bool) or not isinstance(row["seed"], int):
            raise UserError(f"{where}: 'seed' must be an integer, got {row['seed']!r}")
        record = {key: row[key] for key in ROW_IDENTITY}
        record.update({metric: _number(row.get(metric), f"{where}[{metric!r}]") for metric in ROW_METRICS})
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=[*ROW_IDENTITY, *ROW_METRICS])
    duplicated = frame.duplicated(list(ROW_IDENTITY))
    if duplicated.any():
        first = frame.loc[duplicated, list(ROW_IDENTITY)].iloc[0].tolist()
        raise UserError(f"{path}: two rows for (dataset, concept, method, seed) = {first}: keep one per seed")
    return frame


def _parse_entanglement(raw: Any, path: Path) -> dict[tuple[str, str], Entanglement]:
    if not isinstance(raw, dict):
        raise UserError(f"{path}: 'entanglement' must be an object keyed by 'dataset|concept'")
    parsed = {}
    for key, levels in raw.items():
        where = f"{path}: entanglement[{key!r}]"
        dataset, sep, concept = key.partition("|")
        if not sep:
            raise UserError(f"{where}: key must be 'dataset|concept'")
        _require_keys(levels, ("before", "after"), where)
        before, after = levels["before"], levels["after"]
        if (
            not isinstance(before, list)
            or not isinstance(after, list)
            or len(before) != len(after)
            or not before
        ):
            raise UserError(f"{where}: 'before' and 'after' must be non-empty lists of the same length")
        parsed[(dataset, concept)] = Entanglement(
            before=[_number(v, f"{where}['before']") for v in before],
            after=[_number(v, f"{where}['after']") for v in after],
        )
    return parsed


def _parse_examples(raw: Any, path: Path) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise UserError(f"{path}: 'examples' must be a list")
    for index, example in enumerate(raw):
        where = f"{path}: examples[{index}]"
        _require_keys(example, ("dataset", "concept", "user_id", "history", "recommendations"), where)
        if not isinstance(example["recommendations"], dict):
            raise UserError(f"{where}: 'recommendations' must map method -> list of items")
        lists = {"history": example["history"], **example["recommendations"]}
        for name, items in lists.items():
            if not isinstance(items, list):
                raise UserError(f"{where}[{name!r}]: expected a list of items")
            for position, item in enumerate(items):
                _require_keys(item, ("title", "is_concept"), f"{where}[{name!r}][{position}]")
    return raw


def method_sort_key(method: str) -> tuple[int, str]:
    """Original, Retrain, TRACER, TRACER ablations (``tracer-*``), then the other methods alphabetically."""
    if method in HEADLINE_ORDER:
        return HEADLINE_ORDER.index(method), method
    return len(HEADLINE_ORDER) + (0 if method.startswith("tracer-") else 1), method


def aggregate(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample std (ddof=1) over seeds per (dataset, concept, method).

    Returns one row per group with ``<metric>_mean``, ``<metric>_std`` for every metric in METRICS
    and ATTACK_METRICS (:data:`ROW_METRICS`; a missing column counts as not measured)
    (NaN values are skipped; std is NaN with fewer than two values) and ``n_seeds`` (rows in the group).
    Sorted by dataset, concept, then method_sort_key.
    """
    rows = rows.reindex(columns=[*rows.columns, *(m for m in ROW_METRICS if m not in rows.columns)])
    columns = list(ROW_METRICS)
    grouped = rows.groupby(list(KEY_COLUMNS), sort=False)
    summary = pd.concat(
        [
            grouped[columns].mean().add_suffix("_mean"),
            grouped[columns].std(ddof=1).add_suffix("_std"),
            grouped.size().rename("n_seeds"),
        ],
        axis=1,
    ).reset_index()
    order = summary["method"].map(method_sort_key)
    summary = summary.assign(_order=order).sort_values(["dataset", "concept", "_order"], kind="stable")
    return summary.drop(columns="_order").reset_index(drop=True)


def format_headline_table(summary: pd.DataFrame) -> str:
    """A compact fixed-width text table of HEADLINE_METRICS (mean±std over seeds) for the terminal."""
    header = ["dataset", "concept", "method", *HEADLINE_METRICS]
    lines = [
        [
            str(row["dataset"]),
            str(row["concept"]),
            str(row["method"]),
            *(
                _mean_std(row[f"{m}_mean"], row[f"{m}_std"], 1 if m == "seconds" else 4)
                for m in HEADLINE_METRICS
            ),
        ]
        for _, row in summary.iterrows()
    ]
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]
    text = [
        "  ".join(
            cell.ljust(w) if i < 3 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        )
        for cells in [header, *lines]
    ]
    return "\n".join([text[0], "  ".join("-" * w for w in widths), *text[1:]])


def _mean_std(mean: float, std: float, digits: int) -> str:
    if math.isnan(mean):
        return "-"
    if math.isnan(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f}±{std:.{digits}f}"
