"""Each erasure loss moves the forget likelihood the right way; NPO/SimNPO match their closed forms;
RMU moves forget activations towards its target."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from erasure_world import write_world
from tracer.data.artifact import load_dataset
from tracer.data.concepts import concept_targets, resolve_concept
from tracer.data.sequences import build_sequences
from tracer.evaluation.evaluate import load_model_artifact
from tracer.unlearning.base import ErasureContext, build_config
from tracer.unlearning.batches import ForgetRetainBatch, TargetSampler, WindowSampler
from tracer.unlearning.methods import method_class
from tracer.unlearning.npo import npo_loss, simnpo_loss
from tracer.unlearning.objectives import sid_log_prob, target_items
from tracer.unlearning.rmu import block_hidden


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return write_world(tmp_path_factory.mktemp("world"))


def make_context(world, needs_reference: bool):
    dataset = load_dataset(world.data_dir)
    model, table, model_config = load_model_artifact(world.model_dir)
    sequences = build_sequences(dataset)
    concept = resolve_concept(dataset, "Horror")
    targets = concept_targets(sequences, concept)
    reference = copy.deepcopy(model).requires_grad_(False) if needs_reference else None
    context = ErasureContext(
        data_dir=world.data_dir,
        model_config=model_config,
        sequences=sequences,
        concept=concept,
        targets=targets,
        sid_table=table,
        sids_dir=world.model_dir / "sids",
        reference=reference,
        device=torch.device("cpu"),
    )
    forget = TargetSampler(sequences, targets.forget_targets, 16, 8, seed=0).sample()
    retain = TargetSampler(sequences, ~targets.forget_targets, 16, 8, seed=1).sample()
    return model, context, ForgetRetainBatch(forget, retain)


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
    model, context, batch = make_context(world, cls.needs_reference)
    method = cls(build_config(cls, settings), context)
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
