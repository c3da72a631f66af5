"""Relearning attack (docs/method.md, "Attacks"): fine-tune the erased model on a few forget examples
and measure how much of the concept comes back, as a curve over example counts and step counts."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from tracer.attacks.subject import AttackSubject, mean_height
from tracer.errors import UserError
from tracer.unlearning.batches import TargetSampler
from tracer.unlearning.objectives import nll

DEFAULT_POINT = (64, 50)  # (examples, steps): the single attack the tables lead with


@dataclass(frozen=True)
class RelearningConfig:
    """``examples``: forget-example counts, one attacker per count, each fine-tuning on one fixed batch
    of that many (history, concept item) training targets; ``steps``: the step counts at which the
    attacked model is measured (one run per count, measured on the way). AdamW at ``lr``."""

    examples: tuple[int, ...] = (16, 64, 256)
    steps: tuple[int, ...] = (25, 50, 100, 200)
    lr: float = 3e-4  # 1e-3 restores ~0.9 Exposure@10 on every model, Retrain too; 1e-4 none
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.examples or min(self.examples) < 1:
            raise UserError("relearning examples must be >= 1")
        if not self.steps or min(self.steps) < 1 or list(self.steps) != sorted(set(self.steps)):
            raise UserError("relearning steps must be increasing and >= 1")
        if not self.lr > 0:
            raise UserError("the relearning lr must be > 0")


@dataclass
class RelearningCurve:
    """Per example count: Exposure@10 and forget Recall@10 at step 0 (before) and each step count."""

    steps: list[int]
    exposure: dict[int, list[float]] = field(default_factory=dict)
    forget_recall: dict[int, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "steps": self.steps,
            "points": [
                {"examples": n, "steps": s, "exposure@10": e, "forget_recall@10": r}
                for n in self.exposure
                for s, e, r in zip(self.steps, self.exposure[n], self.forget_recall[n], strict=True)
            ],
            "exposure_auc": {str(n): mean_height(self.steps, values) for n, values in self.exposure.items()},
            "forget_recall_auc": {
                str(n): mean_height(self.steps, values) for n, values in self.forget_recall.items()
            },
            "mean_exposure_auc": sum(mean_height(self.steps, v) for v in self.exposure.values())
            / len(self.exposure),
        }


def relearn(subject: AttackSubject, examples: int, steps: list[int], config: RelearningConfig):
    """Fine-tune a copy of the subject's model on ``examples`` forget targets; yields the metrics of
    :meth:`AttackSubject.exposure_and_forget_recall` after each step count in ``steps``."""
    sampler = TargetSampler(
        subject.data, subject.targets.forget_targets, examples, subject.max_history, config.seed
    )
    batch = sampler.sample().to(subject.device)
    model = subject.fresh_model()
    torch.manual_seed(config.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    model.train()
    done = 0
    for target in steps:
        for _ in range(target - done):
            optimizer.zero_grad(set_to_none=True)
            nll(model, batch).backward()
            optimizer.step()
        done = target
        yield subject.exposure_and_forget_recall(model)


def relearning_curve(subject: AttackSubject, config: RelearningConfig = RelearningConfig()) -> dict:
    """The curve over ``config.examples`` x ``config.steps``, with its mean height per example count
    (area under the curve from step 0 divided by the last step count)."""
    before = subject.exposure_and_forget_recall()
    curve = RelearningCurve(steps=[0, *config.steps])
    for examples in config.examples:
        curve.exposure[examples] = [before["exposure@10"]]
        curve.forget_recall[examples] = [before["forget_recall@10"]]
        for point in relearn(subject, examples, list(config.steps), config):
            curve.exposure[examples].append(point["exposure@10"])
            curve.forget_recall[examples].append(point["forget_recall@10"])
    return {"config": {"examples": list(config.examples), "steps": list(config.steps),
                       "lr": config.lr, "seed": config.seed}, **curve.to_dict()}  # fmt: skip


def point_of(curve: dict, examples: int, steps: int) -> dict | None:
    """The curve's point at (examples, steps), or None when the curve did not measure it."""
    return next((p for p in curve["points"] if p["examples"] == examples and p["steps"] == steps), None)
