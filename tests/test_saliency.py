"""Concept-salient weights (docs/method.md §8.16): only the top share of theta by forget / retain Fisher
takes the erasure's updates."""

from __future__ import annotations

import copy

import pytest
import torch

from tests.helpers.erasure_world import make_context, write_world
from tracer.unlearning.base import build_config
from tracer.unlearning.methods import method_class
from tracer.unlearning.objectives import sid_log_prob
from tracer.unlearning.runner import run_steps
from tracer.unlearning.saliency import salient_masks, squared_gradients

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", params=["causal", "tiger"])
def world(request, tmp_path_factory):
    return write_world(tmp_path_factory.mktemp(f"world-{request.param}"), backbone=request.param)


def test_masks_rank_by_forget_over_retain_hand_built_case():
    # eps = 1e-3 x mean retain = 1e-3 x 1.275; scores ~ 4.0, 9.9, 0, 0.75, 1.0
    forget = [torch.tensor([4.0, 1.0, 0.0]), torch.tensor([[3.0, 1.0]])]
    retain = [torch.tensor([1.0, 0.1, 0.0]), torch.tensor([[4.0, 1.275]])]
    top_two = salient_masks(forget, retain, 0.4)
    assert torch.equal(top_two[0], torch.tensor([1.0, 1.0, 0.0]))  # the forget gradient alone would
    assert torch.equal(top_two[1], torch.tensor([[0.0, 0.0]]))  # pick 4.0 and 3.0 instead
    top_one = salient_masks(forget, retain, 0.2)
    assert torch.equal(top_one[0], torch.tensor([0.0, 1.0, 0.0]))
    everything = salient_masks(forget, retain, 1.0)
    assert all(bool((m == 1).all()) for m in everything)


def test_squared_gradients_are_the_mean_of_each_batchs_squared_gradient(world):
    model, _, batch = make_context(world, False)
    parameters = [p for p in model.parameters() if p.requires_grad]
    fisher = squared_gradients(model, parameters, [batch.forget, batch.retain])
    model.eval()
    expected = [torch.zeros_like(p) for p in parameters]
    for examples in (batch.forget, batch.retain):
        model.zero_grad()
        sid_log_prob(model, examples).mean().backward()
        for total, p in zip(expected, parameters):
            if p.grad is not None:
                total += p.grad**2 / 2
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-12) for a, b in zip(fisher, expected))


def erase_steps(world, share: float):
    cls = method_class("tracer")
    config = build_config(cls, {"steps": 4, "lr": 1e-2, "saliency_share": share, "saliency_batches": 2})
    model, context, _ = make_context(world, cls.wants_reference(config))
    parent = copy.deepcopy(model)
    method = cls(config, context)
    method.setup(model)
    run_steps(method, model, context, config)
    return parent, model, method


def test_only_the_salient_share_of_weights_moves(world):
    parent, model, method = erase_steps(world, 0.05)
    parameters = method.parameters(model)
    total = sum(p.numel() for p in parameters)
    allowed = sum(int(m.sum()) for m in method.saliency_masks)
    assert allowed == pytest.approx(0.05 * total, abs=0.01 * total)
    moved = 0
    for before, after, mask in zip(method.parameters(parent), parameters, method.saliency_masks, strict=True):
        changed = before.detach() != after.detach()
        assert not bool((changed & (mask == 0)).any())  # a weight outside the mask keeps the parent's value
        moved += int(changed.sum())
    assert 0 < moved <= allowed


def test_share_one_leaves_the_erasure_unmasked(world):
    _, model, method = erase_steps(world, 1.0)
    assert method.saliency_masks is None
    _, masked_model, _ = erase_steps(world, 0.5)
    differs = [not torch.equal(a, b) for a, b in zip(model.parameters(), masked_model.parameters())]
    assert any(differs)
