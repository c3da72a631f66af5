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

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tracer.attacks.suite import AttackSuiteConfig
from tracer.errors import UserError
from tracer.evaluation.erasure import ErasureEvalConfig

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


def _typed(cls, values: dict | None, where: str):
    values = values or {}
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"{where}: unknown key(s) {unknown}; valid keys are {sorted(known)}")
    return cls(**values)


def parse_bench_config(raw: dict, source: str = "bench config") -> BenchConfig:
    if not isinstance(raw, dict):
        raise UserError(f"{source} must be a YAML mapping")
    allowed = {f.name for f in dataclasses.fields(BenchConfig)}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise UserError(f"{source}: unknown key(s) {unknown}; valid keys are {sorted(allowed)}")
    for key in ("datasets", "concepts", "methods"):
        if not raw.get(key):
            raise UserError(f"{source}: '{key}' is missing or empty")
    datasets = []
    for name, plan in raw["datasets"].items():
        plan = plan or {}
        datasets.append(
            DatasetPlan(
                name=name,
                prepare=plan.get("prepare", {"dataset": name}),
                sids=plan.get("sids", {}),
                train=plan.get("train", {"preset": name}),
            )
        )
    missing = [d.name for d in datasets if d.name not in raw["concepts"]]
    if missing:
        raise UserError(f"{source}: no concepts listed for dataset(s) {missing}")
    from tracer.unlearning.methods import method_class

    for method in raw["methods"]:
        if method != "original":
            method_class(method)  # unknown names fail here, before any work
    attack = raw.get("attack", {})
    return BenchConfig(
        datasets=datasets,
        concepts={k: list(v) for k, v in raw["concepts"].items()},
        methods=list(raw["methods"]),
        seeds=[int(s) for s in raw.get("seeds", [0])],
        method_settings=raw.get("method_settings", {}) or {},
        evaluation=_typed(ErasureEvalConfig, raw.get("evaluation"), f"{source}: evaluation"),
        attack=None if attack is False else _typed(AttackSuiteConfig, attack, f"{source}: attack"),
        examples=int(raw.get("examples", 3)),
    )


def load_bench_config(path: str | Path) -> BenchConfig:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"bench config {path} not found: give a YAML file (see configs/bench-*.yaml)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise UserError(f"{path} is not valid YAML ({str(error).splitlines()[0]})") from None
    return parse_bench_config(raw, str(path))
