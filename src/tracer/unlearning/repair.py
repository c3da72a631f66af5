"""Retain repair after the commit (an extension of ours; docs/method.md §8.15).

Forgetting a concept costs retain quality, and an anchor to the parent (``retain_kl``) that buys it
back also keeps the parent's latent copy of the concept, which a relearning attack then finds. Here the
utility comes back from the data instead: after the commit the erased model continues ordinary
next-item training on retain data only, with the concept items on their new codes. This is what the
next scheduled refresh of a production model would do (the benign-relearning attack of
:mod:`tracer.attacks.benign`), and the retain data never shows a concept item as a target, so nothing
teaches the concept back. An optional ``anchor`` term joins each step's loss (TRACER's cut-parent
divergences during the repair, ``repair_kl`` and ``repair_forget_kl``, and its floored L_F,
``repair_forget``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from tracer.model.base import GenerativeRecommender
from tracer.unlearning.batches import erasure_history, rows_sampler
from tracer.unlearning.objectives import Examples, level_log_probs, nll

Anchor = Callable[[GenerativeRecommender, Examples, Tensor], Tensor]


def repair_sampler(model: GenerativeRecommender, context, config, mask: np.ndarray, rows: int, seed: int):
    """Batches of ``rows`` windows (causal backbone) or examples (tiger) whose scored targets are the
    training targets in ``mask`` (n_targets,), histories cut to what the model takes."""
    history = erasure_history(model, config)
    return rows_sampler(context.sequences, mask, model.batch_kind, rows, history, seed)


def repair_schedule(optimizer: torch.optim.Optimizer, steps: int, decay: bool):
    """The repair's learning-rate schedule over ``steps`` steps: linear from the optimizer's lr towards 0
    (``lr * (1 - k / steps)`` at step k) with ``decay``, else constant."""
    end = 0.0 if decay else 1.0
    return torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, end, total_iters=max(steps, 1))


def retain_repair(
    model: GenerativeRecommender,
    context,
    config,
    steps: int,
    lr: float,
    rows: int,
    anchor: Anchor | None = None,
    decay: bool = False,
) -> list[float]:
    """``steps`` AdamW steps at ``lr`` of the next-SID negative log-likelihood on retain batches of
    ``rows`` windows (causal backbone) or examples (tiger), with the model's dropout as during the
    erasure (``config.dropout``); ``anchor(model, batch, log_probs)``, when given, is added to each
    step's loss (``log_probs``: the batch's teacher-forced per-level log-probs, graph kept). ``decay``:
    the learning rate falls linearly, ``lr * (1 - k / steps)`` at step k, instead of staying at ``lr``.
    Returns the loss every 10 steps."""
    sampler = repair_sampler(model, context, config, ~context.targets.forget_targets, rows, config.seed + 3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=config.weight_decay)
    schedule = repair_schedule(optimizer, steps, decay)
    model.train(config.dropout)
    losses = []
    for step in range(steps):
        optimizer.zero_grad(set_to_none=True)
        batch = sampler.sample().to(context.device)
        log_probs = level_log_probs(model, batch)
        loss = nll(model, batch, log_probs)
        if anchor is not None:
            loss = loss + anchor(model, batch, log_probs)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        schedule.step()
        if step % 10 == 0 or step == steps - 1:
            losses.append(float(loss.detach()))
    model.eval()
    return losses
