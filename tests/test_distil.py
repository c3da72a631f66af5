"""Noise and distil: the noise moves the weights towards a fresh start by the given share, and the
distillation brings the erased model's outputs back on retain batches."""

from __future__ import annotations

import copy

import pytest
import torch

from tests.helpers.erasure_world import make_context
from tracer.unlearning.base import build_config
from tracer.unlearning.distil import noise_and_distil, shrink_towards_fresh_init
from tracer.unlearning.methods import method_class
from tracer.unlearning.objectives import level_kl, level_log_probs, reference_log_probs

pytestmark = pytest.mark.usefixtures("one_thread")


def test_shrink_moves_each_weight_the_given_share_towards_a_fresh_init(world):
    model, _, _ = make_context(world, False)
    before = [p.detach().clone() for p in model.parameters()]
    shrink_towards_fresh_init(model, 0.0, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    full, half = copy.deepcopy(model), copy.deepcopy(model)
    shrink_towards_fresh_init(full, 1.0, seed=0)
    shrink_towards_fresh_init(half, 0.5, seed=0)
    for start, fresh, mid in zip(before, full.parameters(), half.parameters(), strict=True):
        torch.testing.assert_close(mid, (start + fresh) / 2)
    assert any(not torch.equal(a, b) for a, b in zip(before, full.parameters(), strict=True))


def test_distillation_pulls_the_noised_model_back_to_the_teacher(world):
    model, context, batch = make_context(world, False)
    config = build_config(method_class("tracer"), {"retain_windows": 4, "batch_size": 16})
    teacher = copy.deepcopy(model).eval()

    def gap(candidate) -> float:
        with torch.no_grad():
            return float(
                level_kl(
                    level_log_probs(candidate.eval(), batch.retain),
                    reference_log_probs(teacher, batch.retain),
                )
            )

    noised = copy.deepcopy(model)
    shrink_towards_fresh_init(noised, 0.5, seed=config.seed)
    losses = noise_and_distil(model, context, config, steps=60, noise=0.5, lr=3e-3)
    assert gap(model) < 0.5 * gap(noised)  # distillation recovered most of the teacher's outputs
    assert losses[-1] < losses[0]
