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
    extra_seeds: {Horror: [3, 4]}              # more seeds for some concepts (on top of `seeds`)
    method_settings: {ga: {lr: 1.0e-5}}        # overrides of configs/unlearning/<method>.yaml
    evaluation: {mass_users: 200, beam_width: 20}
    attack: {examples: 64, steps: [25, 50]}    # the attack suite's settings (AttackSuiteConfig), or false
    examples: 3                                # concept-fan users shown in the report
    picks: runs/tune/picks.json                # the `tracer picks` file method_settings were written from
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tracer.attacks.suite import AttackSuiteConfig
from tracer.errors import UserError
from tracer.evaluation.erasure import ErasureEvalConfig
from tracer.io import atomic_path, read_json_checked
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
    extra_seeds: dict[str, list[int]] = field(default_factory=dict)
    method_settings: dict[str, dict] = field(default_factory=dict)
    evaluation: ErasureEvalConfig = field(default_factory=ErasureEvalConfig)
    attack: AttackSuiteConfig | None = field(default_factory=AttackSuiteConfig)
    examples: int = 3
    picks: str | None = None  # the tuning picks (`tracer picks`) that method_settings apply unchanged

    @property
    def all_methods(self) -> list[str]:
        return list(ALWAYS) + [m for m in self.methods if m not in ALWAYS]

    def concept_seeds(self, concept: str) -> list[int]:
        """The seeds a concept runs on: ``seeds``, then its ``extra_seeds``."""
        return list(dict.fromkeys([*self.seeds, *self.extra_seeds.get(concept, [])]))

    @property
    def all_seeds(self) -> list[int]:
        return list(dict.fromkeys([*self.seeds, *(s for extra in self.extra_seeds.values() for s in extra)]))


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
    listed = {concept for concepts in config.concepts.values() for concept in concepts}
    unknown = sorted(set(config.extra_seeds) - listed)
    if unknown:
        raise UserError(f"{source}: extra_seeds names concept(s) {unknown} that no dataset lists")
    from tracer.unlearning.methods import method_class

    for method in config.methods:
        if method != "original":
            method_class(method)  # unknown names fail here, before any work
    if config.picks is not None:
        picked = read_picks(config.picks)["methods"]
        stale = [
            m
            for m in config.methods
            if m in picked and config.method_settings.get(m) != picked[m]["settings"]
        ]
        if stale:
            raise UserError(
                f"{source}: method_settings of {', '.join(stale)} are not the picks of {config.picks}: "
                f"rerun `tracer picks ... --bench {source}`"
            )
    return config


def read_picks(path: str | Path) -> dict:
    """A picks file written by `tracer picks`; UserError when it is missing or unreadable."""
    if not Path(path).is_file():
        raise UserError(f"picks file {path} not found: run `tracer picks` on the tuning sweeps first")
    return read_json_checked(path, "rerun `tracer picks`")


def _plan(name: str, plan: dict | None) -> dict:
    """A dataset's plan with its defaults: ``prepare: {dataset: NAME}``, ``train: {preset: NAME}``."""
    return {"name": name, "prepare": {"dataset": name}, "train": {"preset": name}, **(plan or {})}


def load_bench_config(path: str | Path) -> BenchConfig:
    return parse_bench_config(read_yaml(path, "bench config"), str(path))


def write_picks(config_path: Path, picks_path: Path, picks: dict) -> BenchConfig:
    """Apply ``picks`` (written to ``picks_path``) to the bench config at ``config_path`` in place: every
    tuned baseline in ``methods`` gives way to the best one, each tuned method listed gets its pick as
    ``method_settings``, and ``picks`` names the file. Only those three top-level lines change (each must
    be a one-line value); the other lines and comments are kept. Returns the rewritten config."""
    raw = read_yaml(config_path, "bench config") or {}
    tuned = picks["methods"]
    best = picks["best_baseline"]
    methods = [m for m in raw.get("methods") or [] if m not in tuned or m.startswith("tracer")]
    methods += [best] if best and best not in methods else []
    settings = {m: s for m, s in (raw.get("method_settings") or {}).items() if m not in tuned}
    settings.update({m: tuned[m]["settings"] for m in methods if m in tuned})
    lines = config_path.read_text().splitlines()
    for key, value in {"methods": methods, "method_settings": settings, "picks": str(picks_path)}.items():
        flow = yaml.safe_dump({key: value}, default_flow_style=True, width=1_000_000, sort_keys=False)
        text = flow.strip()[1:-1]  # "{key: value}" -> "key: value"
        found = [i for i, line in enumerate(lines) if line.startswith(f"{key}:")]
        if not found:
            lines.append(text)
            continue
        index = found[0]
        if index + 1 < len(lines) and lines[index + 1].startswith((" ", "-")):
            raise UserError(f"{config_path}: write '{key}:' on one line so that `tracer picks` can set it")
        comment = lines[index].partition("  #")[2]
        lines[index] = text + (f"  #{comment}" if comment else "")
    with atomic_path(config_path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return load_bench_config(config_path)
