"""Concept-salient weights: the share of theta that the erasure may move (an extension of ours;
docs/method.md §8.16).

Every weight moved by the forget loss is a weight the retain predictions may depend on. Here each
weight gets a score before the first step: how much the forget targets' likelihood depends on it,
relative to how much the retain targets' does, each measured as the mean squared gradient of the parent
on a few batches (a diagonal Fisher estimate). Only the top ``share`` of weights by that score take the
erasure's updates; the rest stay at the parent's values. The idea is saliency-masked unlearning (SalUn,
Fan et al., ICLR 2024), with the retain Fisher in the denominator so that weights both sets need are
left alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from tracer.model.base import GenerativeRecommender
from tracer.unlearning.objectives import Examples, sid_log_prob


def squared_gradients(
    model: GenerativeRecommender,
    parameters: Sequence[torch.nn.Parameter],
    batches: Sequence[Examples],
) -> list[Tensor]:
    """Mean over ``batches`` of the squared gradient of each batch's mean SID log-likelihood, per entry
    of each parameter (same shapes as ``parameters``); dropout off."""
    totals = [torch.zeros_like(p) for p in parameters]
    was_training = model.training
    model.eval()
    for batch in batches:
        grads = torch.autograd.grad(sid_log_prob(model, batch).mean(), parameters, allow_unused=True)
        for total, grad in zip(totals, grads):
            if grad is not None:
                total += grad.detach() ** 2 / len(batches)
    model.train(was_training)
    return totals


def salient_masks(
    forget_fisher: Sequence[Tensor], retain_fisher: Sequence[Tensor], share: float
) -> list[Tensor]:
    """Float masks (1 = may move), shaped as the inputs: the top ``share`` of all entries by
    forget / (retain + eps), with eps a thousandth of the mean retain value (so that a weight neither set
    uses ranks last, and one only the forget set uses ranks first). Ties at the threshold all move."""
    forget = torch.cat([f.flatten() for f in forget_fisher])
    retain = torch.cat([r.flatten() for r in retain_fisher])
    eps = retain.mean().clamp_min(torch.finfo(retain.dtype).tiny) * 1e-3
    scores = forget / (retain + eps)
    keep = max(1, round(share * scores.numel()))
    threshold = torch.topk(scores, keep).values[-1]
    masks, start = [], 0
    for f in forget_fisher:
        part = scores[start : start + f.numel()].view_as(f)
        masks.append((part >= threshold).to(f.dtype))
        start += f.numel()
    return masks


def concept_salient_masks(
    model: GenerativeRecommender,
    parameters: Sequence[torch.nn.Parameter],
    forget_batches: Callable[[], Examples],
    retain_batches: Callable[[], Examples],
    n_batches: int,
    share: float,
) -> list[Tensor]:
    """:func:`salient_masks` of ``n_batches`` forget and retain batches drawn from the two samplers."""
    forget = squared_gradients(model, parameters, [forget_batches() for _ in range(n_batches)])
    retain = squared_gradients(model, parameters, [retain_batches() for _ in range(n_batches)])
    return salient_masks(forget, retain, share)


def mask_gradients(parameters: Sequence[torch.nn.Parameter], masks: Sequence[Tensor]) -> None:
    """Zero the gradient of every entry outside its mask, in place."""
    for param, mask in zip(parameters, masks):
        if param.grad is not None:
            param.grad.mul_(mask)
