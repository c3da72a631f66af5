"""Retain repair after the commit (an extension of ours; docs/method.md §8.15).

Forgetting a concept costs retain quality, and an anchor to the parent (``retain_kl``) that buys it
back also keeps the parent's latent copy of the concept, which a relearning attack then finds. Here the
utility comes back from the data instead: after the commit the erased model continues ordinary
next-item training on retain data only, with the concept items on their new codes. This is what the
next scheduled refresh of a production model would do (the benign-relearning attack of
:mod:`tracer.attacks.benign`), and the retain data never shows a concept item as a target, so nothing
teaches the concept back.
"""

from __future__ import annotations

import torch

from tracer.model.base import GenerativeRecommender
from tracer.unlearning.batches import TargetSampler, WindowSampler
from tracer.unlearning.objectives import nll


def retain_repair(
    model: GenerativeRecommender, context, config, steps: int, lr: float, rows: int
) -> list[float]:
    """``steps`` AdamW steps at ``lr`` of the next-SID negative log-likelihood on retain batches of
    ``rows`` windows (causal backbone) or examples (tiger), with the model's dropout as during the
    erasure (``config.dropout``). Returns the loss every 10 steps."""
    retain = ~context.targets.forget_targets
    history = min(config.max_history, int(model.config_dict()["max_history"]))  # windows the model takes
    if model.batch_kind == "sequence":
        sampler = WindowSampler(context.sequences, retain, rows, history, config.seed + 3)
    else:
        sampler = TargetSampler(context.sequences, retain, rows, history, config.seed + 3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=config.weight_decay)
    model.train(config.dropout)
    losses = []
    for step in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = nll(model, sampler.sample().to(context.device))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        if step % 10 == 0 or step == steps - 1:
            losses.append(float(loss.detach()))
    model.eval()
    return losses
