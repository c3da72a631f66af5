"""The attack suite: every attack against one artifact, and the numbers the tables lead with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tracer.attacks.benign import BenignConfig, benign_relearning
from tracer.attacks.probe import ProbeConfig, concept_probe
from tracer.attacks.relearning import DEFAULT_POINT, RelearningConfig, point_of, relearning_curve
from tracer.attacks.restore_codes import restore_codes
from tracer.attacks.subject import load_subject
from tracer.errors import UserError
from tracer.evaluation.erasure import ErasureEvalConfig, format_metric_table

ATTACKS = ("relearning", "benign", "restore_codes", "probe")

# the per-method numbers that tables, results.json and the report show
ATTACK_METRICS = (
    "attack_exposure@10",
    "attack_forget_recall@10",
    "attack_exposure_auc",
    "benign_exposure@10",
    "restore_exposure@10",
    "restore_concept_mass",
    "probe_auc",
)


@dataclass(frozen=True)
class AttackSuiteConfig:
    """Which attacks run (``attacks``, a subset of :data:`ATTACKS`) and their settings, flat so that a
    bench YAML can set them: the relearning curve's ``examples`` x ``steps`` (a single number is a
    one-point curve) at ``lr``; ``benign_steps`` of retain-only training; ``probe_targets`` training
    targets for the probe. One ``seed`` for all."""

    attacks: tuple[str, ...] = ATTACKS
    examples: tuple[int, ...] = RelearningConfig.examples
    steps: tuple[int, ...] = RelearningConfig.steps
    lr: float = RelearningConfig.lr
    benign_steps: int = BenignConfig.steps
    probe_targets: int = ProbeConfig.train_targets
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("attacks", "examples", "steps"):
            value = getattr(self, name)
            object.__setattr__(self, name, tuple(value) if isinstance(value, (list, tuple)) else (value,))
        unknown = sorted(set(self.attacks) - set(ATTACKS))
        if unknown:
            raise UserError(f"unknown attack(s) {unknown}: choose from {', '.join(ATTACKS)}")
        self.relearning, self.benign, self.probe  # noqa: B018  (validates each part now)

    @property
    def relearning(self) -> RelearningConfig:
        return RelearningConfig(tuple(self.examples), tuple(self.steps), self.lr, self.seed)

    @property
    def benign(self) -> BenignConfig:
        return BenignConfig(steps=self.benign_steps, seed=self.seed)

    @property
    def probe(self) -> ProbeConfig:
        return ProbeConfig(train_targets=self.probe_targets, seed=self.seed)


def run_attack_suite(
    model_dir: str | Path,
    data_dir: str | Path,
    concept_spec: str,
    config: AttackSuiteConfig = AttackSuiteConfig(),
    evaluation: ErasureEvalConfig = ErasureEvalConfig(),
    device: str = "cpu",
    parent_dir: str | Path | None = None,
) -> dict:
    """Every attack in ``config.attacks`` against the artifact at ``model_dir`` (never modified):
    one result section per attack plus ``summary`` (keys of :data:`ATTACK_METRICS`)."""
    subject = load_subject(model_dir, data_dir, concept_spec, evaluation, device)
    result: dict = {"model": str(model_dir), "concept": concept_spec}
    if "relearning" in config.attacks:
        result["relearning"] = relearning_curve(subject, config.relearning)
    if "benign" in config.attacks:
        result["benign"] = benign_relearning(subject, config.benign)
    if "restore_codes" in config.attacks:
        result["restore_codes"] = restore_codes(subject, parent_dir)
    if "probe" in config.attacks:
        result["probe"] = concept_probe(subject, config.probe)
    result["summary"] = attack_summary(result)
    return result


def attack_summary(result: dict) -> dict:
    """The headline number of each attack that ran (None for those that did not)."""
    summary = dict.fromkeys(ATTACK_METRICS)
    if "relearning" in result:
        curve = result["relearning"]
        point = point_of(curve, *DEFAULT_POINT)
        if point is not None:
            summary["attack_exposure@10"] = point["exposure@10"]
            summary["attack_forget_recall@10"] = point["forget_recall@10"]
        summary["attack_exposure_auc"] = curve["mean_exposure_auc"]
    if "benign" in result:
        summary["benign_exposure@10"] = result["benign"]["exposure@10_after"]
    if "exposure@10" in result.get("restore_codes", {}):
        summary["restore_exposure@10"] = result["restore_codes"]["exposure@10"]
        summary["restore_concept_mass"] = result["restore_codes"]["concept_mass"]
    if "probe" in result:
        summary["probe_auc"] = result["probe"]["auc"]
    return summary


def probe_floor_line(result: dict) -> str | None:
    """One line setting the probe's AUC beside its chance level (``untrained_auc``: the same probe on the
    architecture untrained), or None when the probe did not run or could not be scored."""
    probe = result.get("probe") or {}
    if probe.get("auc") is None or probe.get("untrained_auc") is None:
        return None
    return (
        f"probe AUC {probe['auc']:.3f}; the same architecture untrained (the probe's chance level) "
        f"{probe['untrained_auc']:.3f}"
    )


def format_attack_summary(rows: dict[str, dict]) -> str:
    """A fixed-width table: one row per artifact, the attack summary as columns."""
    return format_metric_table(rows, ATTACK_METRICS, cell=24)
