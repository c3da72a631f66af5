"""Benign relearning (docs/method.md, "Attacks"): the next scheduled refresh of a production model,
ordinary training on retain data only. A concept that comes back from it was never gone."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tracer.attacks.subject import AttackSubject
from tracer.errors import UserError
from tracer.unlearning.batches import TargetSampler, WindowSampler, rows_sampler
from tracer.unlearning.objectives import nll


@dataclass(frozen=True)
class BenignConfig:
    """``steps`` optimiser steps of AdamW on retain training targets, at the model's own training
    learning rate and batch size (``lr`` / ``batch_size`` override them; batch rows are windows for
    the causal backbone, (history, target) examples for tiger, as in training)."""

    steps: int = 400
    lr: float | None = None
    batch_size: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise UserError("benign relearning steps must be >= 1")
        if self.lr is not None and not self.lr > 0:
            raise UserError("the benign relearning lr must be > 0")


def benign_sampler(subject: AttackSubject, rows: int, seed: int) -> TargetSampler | WindowSampler:
    """Batches of ``rows`` retain training rows of the attacked model's data (its forget targets out)."""
    retain = ~subject.targets.forget_targets
    return rows_sampler(subject.data, retain, subject.model.batch_kind, rows, subject.max_history, seed)


def benign_relearning(subject: AttackSubject, config: BenignConfig = BenignConfig()) -> dict:
    """Exposure@10 and forget Recall@10 before and after ``config.steps`` of retain-only training."""
    train = subject.model_config.get("train_config", {}).get("train", {})
    lr = config.lr if config.lr is not None else float(train.get("lr", 2e-3))
    rows = config.batch_size if config.batch_size is not None else int(train.get("batch_size", 128))
    before = subject.exposure_and_forget_recall()
    sampler = benign_sampler(subject, rows, config.seed)
    model = subject.fresh_model()
    torch.manual_seed(config.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for _ in range(config.steps):
        optimizer.zero_grad(set_to_none=True)
        nll(model, sampler.sample().to(subject.device)).backward()
        optimizer.step()
    after = subject.exposure_and_forget_recall(model)
    return {
        "config": {"steps": config.steps, "lr": lr, "batch_size": rows, "seed": config.seed},
        "exposure@10_before": before["exposure@10"],
        "exposure@10_after": after["exposure@10"],
        "forget_recall@10_after": after["forget_recall@10"],
    }
