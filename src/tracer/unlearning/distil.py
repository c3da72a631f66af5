"""Noise and distil (an extension of ours after UNDO, arXiv 2506.06278; docs/method.md §8.12).

After an erasure has committed, the model's outputs no longer show the concept, but its weights may
still hold it: a few relearning steps bring it back. Here the erased model becomes a frozen teacher, the
weights are moved a share ``noise`` of the way towards a fresh initialisation, and the noised copy learns
the teacher's per-level token distributions on retain batches again. What the outputs do not show is
not taught back, and the noise has disturbed it.
"""

from __future__ import annotations

import copy

import torch

from tracer.model.base import GenerativeRecommender
from tracer.unlearning.batches import erasure_history, retain_sampler
from tracer.unlearning.objectives import level_kl, level_log_probs, reference_log_probs


def shrink_towards_fresh_init(model: GenerativeRecommender, noise: float, seed: int) -> None:
    """theta <- (1 - noise) theta + noise theta_0, with theta_0 a fresh initialisation of every module
    that has ``reset_parameters`` (parameters of other modules are left as they are)."""
    fresh = copy.deepcopy(model)
    torch.manual_seed(seed)
    for module in fresh.modules():
        if module is not fresh and hasattr(module, "reset_parameters"):
            module.reset_parameters()
    with torch.no_grad():
        for own, new in zip(model.parameters(), fresh.parameters(), strict=True):
            own.mul_(1.0 - noise).add_(noise * new)


def noise_and_distil(
    model: GenerativeRecommender, context, config, steps: int, noise: float, lr: float
) -> list[float]:
    """Noise ``model`` (after the commit: its codes are the new ones) and distil the erased model back
    into it for ``steps`` AdamW steps on retain batches (the same batches the erasure drew). Returns the
    distillation loss every 10 steps."""
    teacher = copy.deepcopy(model).eval().requires_grad_(False)
    shrink_towards_fresh_init(model, noise, config.seed)
    retain = ~context.targets.forget_targets
    history = erasure_history(model, config)
    sampler = retain_sampler(context.sequences, retain, model.batch_kind, config, history, config.seed + 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train(config.dropout)
    losses = []
    for step in range(steps):
        batch = sampler.sample().to(context.device)
        optimizer.zero_grad(set_to_none=True)
        loss = level_kl(level_log_probs(model, batch), reference_log_probs(teacher, batch))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        if step % 10 == 0 or step == steps - 1:
            losses.append(float(loss.detach()))
    model.eval()
    return losses
