"""Each erasure loss moves the forget likelihood the right way; NPO/SimNPO match their closed forms;
RMU moves forget activations towards its target."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.helpers.erasure_world import make_context
from tracer.unlearning.base import build_config
from tracer.unlearning.batches import TargetSampler, WindowSampler
from tracer.unlearning.methods import method_class
from tracer.unlearning.npo import npo_loss, simnpo_loss
from tracer.unlearning.objectives import sid_log_prob, target_items
from tracer.unlearning.rmu import block_hidden


@pytest.mark.parametrize(
    ("name", "settings"),
    [
        ("ga", {}),
        ("graddiff", {"alpha": 0.0}),
        ("npo", {"alpha": 0.0}),
        ("simnpo", {"alpha": 0.0}),
        ("tracer", {}),
    ],
)
def test_one_step_lowers_forget_likelihood(world, name, settings):
    """The forget term alone (retain weight 0; TRACER with all its terms) lowers log p(forget SIDs)."""
    cls = method_class(name)
    config = build_config(cls, settings)  # the method's YAML settings (TRACER's include a retain KL)
    model, context, batch = make_context(world, cls.wants_reference(config))
    method = cls(config, context)
    method.setup(model)
    model.eval()  # no dropout: the change comes from the update alone
    with torch.no_grad():
        before = sid_log_prob(model, batch.forget).mean()
    optimizer = torch.optim.SGD(method.parameters(model), lr=1e-2)
    method.step(model, batch, optimizer)
    with torch.no_grad():
        after = sid_log_prob(model, batch.forget).mean()
    assert after < before


def test_npo_equals_two_over_beta_log_two_at_reference():
    log_pi = torch.tensor([-3.0, -1.5, -7.2])
    for beta in (0.1, 1.0, 2.5):
        assert float(npo_loss(log_pi, log_pi.clone(), beta)) == pytest.approx(
            2 / beta * math.log(2), rel=1e-6
        )
    # below the reference (forgotten) the loss falls towards 0
    assert float(npo_loss(log_pi - 50, log_pi, 1.0)) < 1e-6


def test_simnpo_closed_form():
    log_pi = torch.tensor([-4.0, -8.0])
    beta, delta, length = 3.0, 0.5, 4
    expected = np.mean(
        [-(2 / beta) * math.log(1 / (1 + math.exp(-beta * (-lp / length - delta)))) for lp in (-4.0, -8.0)]
    )
    assert float(simnpo_loss(log_pi, length, beta, delta)) == pytest.approx(expected, rel=1e-6)


def test_npo_loss_on_model_equals_reference_value_before_training(world):
    cls = method_class("npo")
    model, context, batch = make_context(world, True)
    method = cls(build_config(cls, {"alpha": 0.0}), context)
    method.setup(model)
    loss, _ = method.loss(model.eval(), batch)
    assert float(loss.detach()) == pytest.approx(2 / 0.1 * math.log(2), rel=1e-5)


def test_rmu_moves_forget_activations_towards_target(world):
    cls = method_class("rmu")
    model, context, batch = make_context(world, True)
    method = cls(build_config(cls, {"alpha": 0.0}), context)
    method.setup(model)
    model.eval()
    method.loss(model, batch)  # sets the steering coefficient
    target = method.coefficient * method.direction
    with torch.no_grad():
        before = (block_hidden(model, method.block, batch.forget) - target).norm(dim=-1).mean()
    optimizer = torch.optim.SGD(method.parameters(model), lr=1e-3)
    method.step(model, batch, optimizer)
    with torch.no_grad():
        after = (block_hidden(model, method.block, batch.forget) - target).norm(dim=-1).mean()
    assert after < before


def test_retain_windows_score_exactly_the_retain_targets_like_per_target_batches(world):
    """One window pass gives every retain target's SID NLL, equal to scoring each (history, item)
    example on its own, and never scores a concept (forget) target."""
    model, context, _ = make_context(world, needs_reference=False)
    model.eval()
    retain_mask = ~context.targets.forget_targets
    max_history = model.config.max_history
    windows = WindowSampler(context.sequences, retain_mask, windows=1000, max_history=max_history, seed=0)
    batch = windows.sample()
    items = target_items(batch)
    assert not np.isin(items.numpy(), context.concept.item_indices).any()
    assert len(items) == int(retain_mask.sum())  # all windows in one batch: each retain target once
    per_target = TargetSampler(context.sequences, retain_mask, 10_000, max_history, seed=0)
    every = per_target.rows(np.arange(len(per_target)))
    with torch.no_grad():
        window_nll = -sid_log_prob(model, batch)
        target_nll = -sid_log_prob(model, every)
    torch.testing.assert_close(window_nll.sort().values, target_nll.sort().values, rtol=1e-4, atol=1e-4)
