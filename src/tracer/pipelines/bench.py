"""``tracer bench``: run a grid of datasets x concepts x methods x seeds, resumably.

Every stage's artifact lives under ``OUT/work/`` and is reused when present (prepared data, SIDs, one
trained model per seed, one erased artifact per cell); a finished cell's row is ``OUT/cells/<key>.json``
and is skipped on a rerun. The rankings behind every number are saved (``OUT/recs/.../<method>.parquet``:
``user_id``, ``rank``, ``item_id``, ``score``). ``OUT/results.json`` / ``results.csv`` hold one row per
cell (the schema of :mod:`tracer.reporting.results`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import platform
import re
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from tracer.attacks.suite import ATTACK_METRICS, run_attack_suite
from tracer.data.artifact import load_dataset
from tracer.data.concepts import resolve_concept
from tracer.data.loaders import LoaderOptions, load_raw
from tracer.data.pipeline import PrepareConfig, write_prepared
from tracer.data.sequences import build_sequences
from tracer.errors import UserError
from tracer.evaluation.erasure import HEADLINE_METRICS, evaluate_erasure
from tracer.evaluation.evaluate import Ranking
from tracer.evaluation.metrics import concept_share
from tracer.io import atomic_path, read_json, write_json, write_parquet
from tracer.model.artifact import TRAIN_CONFIG_FILE
from tracer.pipelines.bench_config import BenchConfig, DatasetPlan, read_picks
from tracer.semantic_ids.build import SidsConfig, build_sids
from tracer.training.checkpointing import has_training_state
from tracer.training.config import TrainConfig, load_preset
from tracer.training.loop import train
from tracer.unlearning.runner import EraseRequest, erase, method_defaults


def settings_tag(settings: dict | None) -> str:
    """A short stable tag of a settings dict, so that changed settings never reuse stale artifacts."""
    if not settings:
        return "default"
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:8]


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "concept"


class Bench:
    """One run of a :class:`BenchConfig` into ``out``."""

    def __init__(
        self, config: BenchConfig, out: Path, command: str = "tracer bench", device: str = "cpu"
    ) -> None:
        self.config, self.out, self.command, self.device = config, Path(out), command, device

    # -- artifacts, each built once -----------------------------------------------------------------
    def work(self, plan: DatasetPlan) -> Path:
        return self.out / "work" / plan.name

    def data_dir(self, plan: DatasetPlan) -> Path:
        folder = self.work(plan) / f"data-{settings_tag(plan.prepare)}"
        if not (folder / "manifest.json").is_file():
            prepare = dict(plan.prepare)
            dataset = prepare.pop("dataset", plan.name)
            kcore = prepare.pop("kcore", None)
            options = LoaderOptions(
                **{
                    k: Path(v) if k in ("path", "meta", "items", "columns_yaml") else v
                    for k, v in prepare.items()
                }
            )
            manifest = write_prepared(
                load_raw(dataset, options), PrepareConfig(kcore=kcore), folder, overwrite=True
            )
            tqdm.write(
                f"{plan.name}: {manifest['n_users']:,} users, {manifest['n_items']:,} items, "
                f"{manifest['n_interactions']:,} interactions"
            )
        return folder

    def sids_dir(self, plan: DatasetPlan) -> Path:
        folder = self.work(plan) / f"sids-{settings_tag(plan.sids)}"
        if not (folder / "stats.json").is_file():
            build_sids(self.data_dir(plan), folder, SidsConfig(**plan.sids), overwrite=True)
        return folder

    def model_dir(self, plan: DatasetPlan, seed: int) -> Path:
        folder = self.work(plan) / f"model-seed{seed}-{settings_tag(plan.train)}"
        settings = dict(plan.train)
        preset = settings.pop("preset", plan.name)
        config = load_preset(preset).replace(seed=seed, device=self.device, **settings)
        if (folder / "metrics.json").is_file():
            # the tag hashes the grid's settings, not the preset file they name: check the file too
            changed = TrainConfig.load(folder / TRAIN_CONFIG_FILE).differences(config)
            if changed:
                raise UserError(
                    f"{folder} holds a model trained with other settings ({', '.join(changed)}; preset "
                    f"{preset!r} changed since?): delete that folder to retrain it, or choose a new --out"
                )
        else:
            resume = has_training_state(folder)
            train(
                config, self.data_dir(plan), self.sids_dir(plan), folder, resume=resume, overwrite=not resume
            )
        return folder

    def artifact_dir(self, plan: DatasetPlan, concept: str, method: str, seed: int) -> Path:
        """Where the cell's erased artifact lives (written or not)."""
        tag = settings_tag(self.effective_settings(method))
        return self.work(plan) / "erased" / slug(concept) / f"{method}-seed{seed}-{tag}"

    def artifact(self, plan: DatasetPlan, concept: str, method: str, seed: int) -> Path:
        if method == "original":
            return self.model_dir(plan, seed)
        folder = self.artifact_dir(plan, concept, method, seed)
        if not (folder / "manifest.json").is_file():
            erase(
                EraseRequest(
                    model_dir=self.model_dir(plan, seed),
                    data_dir=self.data_dir(plan),
                    concept=concept,
                    method=method,
                    out=folder,
                    overrides=self.config.method_settings.get(method),
                    seed=seed,
                    overwrite=True,
                    device=self.device,
                )
            )
        return folder

    def effective_settings(self, method: str) -> dict | None:
        """The method's config file merged with this grid's overrides: a changed default is a new tag."""
        if method == "original":
            return None
        return {**method_defaults(method), **(self.config.method_settings.get(method) or {})}

    # -- cells ----------------------------------------------------------------------------------------
    def cell_key(self, plan: DatasetPlan, concept: str, method: str, seed: int) -> str:
        tag = settings_tag(
            {
                "method": self.effective_settings(method),
                "eval": asdict(self.config.evaluation),
                "attack": None if self.config.attack is None else asdict(self.config.attack),
            }
        )
        return f"{plan.name}__{slug(concept)}__{method}__seed{seed}__{tag}"

    def recs_path(self, plan: DatasetPlan, concept: str, method: str, seed: int) -> Path:
        """``recs/<method>.parquet``, nested by the grid dimensions that have more than one value."""
        parts = []
        if len(self.config.datasets) > 1:
            parts.append(plan.name)
        if len(self.config.concepts[plan.name]) > 1:
            parts.append(slug(concept))
        if len(self.config.all_seeds) > 1:
            parts.append(f"seed{seed}")
        return self.out.joinpath("recs", *parts, f"{method}.parquet")

    def _reuse_recs(self, plan: DatasetPlan, concept: str, method: str, seed: int) -> None:
        """A finished cell of another grid shape over the same folder nested its rankings differently
        (e.g. one concept of a two-concept grid): copy them to this grid's path."""
        target = self.recs_path(plan, concept, method, seed)
        if target.is_file():
            return
        dimensions = [plan.name, slug(concept), f"seed{seed}"]
        for keep in itertools.product([True, False], repeat=3):
            parts = [part for part, kept in zip(dimensions, keep) if kept]
            source = self.out.joinpath("recs", *parts, f"{method}.parquet")
            if source.is_file():
                write_parquet(target, pd.read_parquet(source))
                return
        raise FileNotFoundError(f"the rankings of the finished cell {method} (seed {seed}) are missing")

    def run_cell(self, plan: DatasetPlan, concept: str, method: str, seed: int, retrain) -> dict:
        path = self.out / "cells" / f"{self.cell_key(plan, concept, method, seed)}.json"
        if path.is_file():
            self._reuse_recs(plan, concept, method, seed)
            return read_json(path)
        artifact = self.artifact(plan, concept, method, seed)
        data_dir = self.data_dir(plan)
        reference = None if method in ("retrain", "original") else retrain
        metrics, ranking = evaluate_erasure(
            artifact, data_dir, concept, self.config.evaluation, self.device, reference
        )
        item_ids = load_dataset(data_dir).items["item_id"].to_numpy()
        write_parquet(self.recs_path(plan, concept, method, seed), ranking.to_frame(item_ids))
        row = {
            "dataset": plan.name,
            "concept": concept,
            "method": method,
            "seed": seed,
            **{key: metrics["headline"][key] for key in HEADLINE_METRICS},
            "seconds": metrics["cost"]["seconds"],
            "params_updated": metrics["cost"]["params_updated"],
        }
        row.update(
            {
                key: metrics.get("vs_retrain", {}).get(key)
                for key in ("gap_retain_ndcg@10", "gap_exposure@10", "top10_overlap")
            }
        )
        row.update(dict.fromkeys(ATTACK_METRICS))
        row["relearning_curve"] = None
        if self.config.attack is not None and method != "original":
            attacks = run_attack_suite(
                artifact, data_dir, concept, self.config.attack, self.config.evaluation, self.device
            )
            write_json(path.with_name(f"{path.stem}-attacks.json"), attacks)
            row.update(attacks["summary"])
            row["relearning_curve"] = attacks.get("relearning", {}).get("points")
        manifest = artifact / "manifest.json"
        if method.startswith("tracer") and manifest.is_file():
            summary = read_json(manifest)["summary"]
            row["entanglement_before"] = summary["entanglement_before"]
            row["entanglement_after"] = summary["entanglement_after"]
            row["items_reassigned"] = summary["items_reassigned"]
        write_json(path, row)
        return row

    def run(self) -> dict:
        started = time.perf_counter()
        cells = [
            (plan, concept, seed)
            for plan in self.config.datasets
            for concept in self.config.concepts[plan.name]
            for seed in self.config.concept_seeds(concept)
        ]
        rows, warnings = [], []
        bar = tqdm(total=len(cells) * len(self.config.all_methods), desc="bench cells")
        for plan, concept, seed in cells:
            retrain_row = self.run_cell(plan, concept, "retrain", seed, None)
            bar.update()
            warning = self.reference_warning(plan, concept, seed)
            if warning is not None:
                warnings.append(warning)
                tqdm.write(f"warning: {warning}")
            retrain = (self._as_metrics(retrain_row), self._ranking(plan, concept, "retrain", seed))
            rows.append(retrain_row)
            for method in self.config.all_methods:
                if method == "retrain":
                    continue
                bar.set_postfix_str(f"{plan.name} {concept} {method} seed {seed}")
                rows.append(self.run_cell(plan, concept, method, seed, retrain))
                bar.update()
        bar.close()
        return self.results(rows, warnings, time.perf_counter() - started)

    def reference_warning(self, plan: DatasetPlan, concept: str, seed: int) -> str | None:
        """The Retrain artifact's warning about its own schedule (docs/method.md §3), with its cell."""
        manifest = self.artifact_dir(plan, concept, "retrain", seed) / "manifest.json"
        warning = read_json(manifest).get("summary", {}).get("warning") if manifest.is_file() else None
        return None if warning is None else f"{plan.name}, {concept}, seed {seed}: {warning}"

    def _as_metrics(self, row: dict) -> dict:
        return {
            "model": row["method"],
            "headline": {k: row[k] for k in HEADLINE_METRICS},
            "cost": {"seconds": row["seconds"]},
        }

    def _ranking(self, plan: DatasetPlan, concept: str, method: str, seed: int) -> Ranking:
        data = build_sequences(load_dataset(self.data_dir(plan)))
        frame = pd.read_parquet(self.recs_path(plan, concept, method, seed))
        return Ranking.from_frame(frame, data.user_ids, data.item_ids)

    # -- results -------------------------------------------------------------------------------------
    def examples(self) -> list[dict]:
        """A few concept fans per (dataset, concept): their recent history and every method's top-10
        (first seed)."""
        out = []
        seed = self.config.seeds[0]
        for plan in self.config.datasets:
            dataset = load_dataset(self.data_dir(plan))
            data = build_sequences(dataset)
            titles = dataset.items["title"].to_numpy()
            for concept_spec in self.config.concepts[plan.name]:
                mask = resolve_concept(dataset, concept_spec).item_mask
                histories = data.histories("test")
                share = concept_share(histories, mask)
                fans = np.argsort(-share, kind="stable")[: self.config.examples]
                lists = {
                    m: Ranking.from_frame(
                        pd.read_parquet(self.recs_path(plan, concept_spec, m, seed)),
                        data.user_ids,
                        data.item_ids,
                    )
                    for m in self.config.all_methods
                }
                for user in fans:
                    out.append(
                        {
                            "dataset": plan.name,
                            "concept": concept_spec,
                            "user_id": str(data.user_ids[user]),
                            "history": [
                                {"title": str(titles[i]), "is_concept": bool(mask[i])}
                                for i in histories[user][-10:]
                            ],
                            "recommendations": {
                                m: [
                                    {"title": str(titles[i]), "is_concept": bool(mask[i])}
                                    for i in r.items[user][:10]
                                    if i >= 0
                                ]
                                for m, r in lists.items()
                            },
                        }
                    )
        return out

    def results(self, rows: list[dict], warnings: list[str], seconds: float) -> dict:
        entanglement = {}
        for row in rows:
            if row["method"] == "tracer" and "entanglement_before" in row:
                entanglement.setdefault(
                    f"{row['dataset']}|{row['concept']}",
                    {"before": row["entanglement_before"], "after": row["entanglement_after"]},
                )
        table = [{k: v for k, v in row.items() if not k.startswith("entanglement")} for row in rows]
        results = {
            "meta": {
                "created": time.strftime("%Y-%m-%d %H:%M:%S"),
                "machine": platform.platform(),
                "processor": platform.processor() or platform.machine(),
                "command": self.command,
                "seconds": round(seconds, 1),
                "config": _plain(self.config),
                "warnings": warnings,
            },
            "rows": table,
            "entanglement": entanglement,
            "examples": self.examples(),
        }
        write_json(self.out / "results.json", results)
        frame = pd.DataFrame(table)
        write_parquet(self.out / "results.parquet", frame)
        with atomic_path(self.out / "results.csv") as tmp:
            frame.to_csv(tmp, index=False)
        return results


def _plain(config: BenchConfig) -> dict:
    plain = asdict(config)
    plain["datasets"] = [asdict(d) for d in config.datasets]
    return plain


def run_bench(
    config: BenchConfig, out: str | Path, command: str = "tracer bench", device: str = "cpu"
) -> dict:
    Path(out).mkdir(parents=True, exist_ok=True)
    if config.picks is not None:  # the report shows the search spaces and picks these settings came from
        write_json(Path(out) / "picks.json", read_picks(config.picks))
    return Bench(config, Path(out), command, device).run()
