"""The typed configuration of ``tracer bench CONFIG.yaml`` (a grid of datasets x concepts x methods x seeds).

Example::

    datasets:
      ml-100k:
        prepare: {dataset: ml-100k}            # arguments of `tracer prepare` (path, kcore, ...)
        sids: {method: rq-kmeans, text: full}  # fields of SidsConfig
        train: {preset: ml-100k}               # a preset name or YAML path, + TrainConfig overrides
    concepts: {ml-100k: [Horror, "Children's"]}
    methods: [tracer, ga, npo, filter]         # "original" and "retrain" are always evaluated
    seeds: [0, 1, 2]
    method_settings: {ga: {lr: 1.0e-5}}        # overrides of configs/unlearning/<method>.yaml
    evaluation: {mass_users: 200, beam_width: 20}
    attack: {examples: 64, steps: [25, 50]}    # the attack suite's settings (AttackSuiteConfig), or false
    examples: 3                                # concept-fan users shown in the report
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tracer.attacks.suite import AttackSuiteConfig
from tracer.errors import UserError
from tracer.evaluation.erasure import ErasureEvalConfig
from tracer.typed_config import load_config, read_yaml

ALWAYS = ("original", "retrain")


@dataclass
class DatasetPlan:
    name: str
    prepare: dict
    sids: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)


@dataclass
class BenchConfig:
    datasets: list[DatasetPlan]
    concepts: dict[str, list[str]]
    methods: list[str]
    seeds: list[int] = field(default_factory=lambda: [0])
    method_settings: dict[str, dict] = field(default_factory=dict)
    evaluation: ErasureEvalConfig = field(default_factory=ErasureEvalConfig)
    attack: AttackSuiteConfig | None = field(default_factory=AttackSuiteConfig)
    examples: int = 3

    @property
    def all_methods(self) -> list[str]:
        return list(ALWAYS) + [m for m in self.methods if m not in ALWAYS]


def parse_bench_config(raw: dict, source: str = "bench config") -> BenchConfig:
    """The grid from its YAML mapping (typed loader: unknown keys, types and ranges name the key and
    ``source``); ``datasets`` maps a name to its plan; ``attack: false`` runs no attack."""
    if not isinstance(raw, dict):
        raise UserError(f"{source} must be a YAML mapping")
    for key in ("datasets", "concepts", "methods"):
        if not raw.get(key):
            raise UserError(f"{source}: '{key}' is missing or empty")
    if not isinstance(raw["datasets"], dict):
        raise UserError(f"{source}: 'datasets' must map a name to its plan")
    raw = {**raw, "datasets": [_plan(name, plan) for name, plan in raw["datasets"].items()]}
    if raw.get("attack") is False:
        raw["attack"] = None
    config = load_config(BenchConfig, raw, source)
    missing = [d.name for d in config.datasets if d.name not in config.concepts]
    if missing:
        raise UserError(f"{source}: no concepts listed for dataset(s) {missing}")
    from tracer.unlearning.methods import method_class

    for method in config.methods:
        if method != "original":
            method_class(method)  # unknown names fail here, before any work
    return config


def _plan(name: str, plan: dict | None) -> dict:
    """A dataset's plan with its defaults: ``prepare: {dataset: NAME}``, ``train: {preset: NAME}``."""
    return {"name": name, "prepare": {"dataset": name}, "train": {"preset": name}, **(plan or {})}


def load_bench_config(path: str | Path) -> BenchConfig:
    return parse_bench_config(read_yaml(path, "bench config"), str(path))
