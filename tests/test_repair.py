"""Retain repair (docs/method.md §8.15): ordinary training on retain targets only, after the commit."""

from __future__ import annotations

import copy

import pytest
import torch

from tests.helpers.erasure_world import make_context, write_world
from tracer.unlearning import repair
from tracer.unlearning.base import build_config
from tracer.unlearning.methods import method_class
from tracer.unlearning.objectives import level_kl, level_log_probs, nll, target_items
from tracer.unlearning.tracer import forget_log_probs, hard_log_likelihood, reweighted_tokens

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", params=["causal", "tiger"])
def world(request, tmp_path_factory):
    return write_world(tmp_path_factory.mktemp(f"world-{request.param}"), backbone=request.param)


def scored_targets(batch) -> torch.Tensor:
    """The items a batch's loss scores: the masked positions of windows, or the examples' targets."""
    return batch.sequences[batch.loss_mask] if hasattr(batch, "loss_mask") else batch.targets


def test_repair_scores_retain_targets_only_and_lowers_their_loss(world, monkeypatch):
    model, context, batch = make_context(world, False)
    config = build_config(method_class("tracer"), {"retain_windows": 4, "batch_size": 16})
    scored = []

    def recording_nll(model, batch, log_probs=None):
        scored.append(scored_targets(batch))
        return nll(model, batch, log_probs)

    monkeypatch.setattr(repair, "nll", recording_nll)
    with torch.no_grad():
        before = float(nll(model.eval(), batch.retain))
    losses = repair.retain_repair(model, context, config, steps=40, lr=3e-3, rows=8)
    with torch.no_grad():
        after = float(nll(model.eval(), batch.retain))
    assert len(scored) == 40 and len(losses) == 5  # steps 0, 10, 20, 30 and the last
    concept = torch.as_tensor(context.concept.item_mask)
    assert all(targets.numel() > 0 and not concept[targets].any() for targets in scored)
    assert after < before  # held-out of the sampler's seed: the retain batch of make_context


def test_tracer_repairs_after_the_commit_and_keeps_the_committed_codes(world):
    """The same erasure with and without repair commits the same codes; the repair then moves the
    weights and leaves the model on those codes."""

    def erased(repair_steps: int):
        cls = method_class("tracer")
        settings = {"tau": 0.5, "repair_steps": repair_steps, "repair_lr": 3e-3, "repair_windows": 4}
        config = build_config(cls, settings)
        model, context, _ = make_context(world, cls.wants_reference(config))
        method = cls(config, context)
        method.setup(model)
        with torch.no_grad():
            method.phi += 3.0 * torch.randn(method.phi.shape, generator=torch.Generator().manual_seed(3),
                                            dtype=method.phi.dtype)  # fmt: skip
        before = copy.deepcopy(model)
        table, summary = method.finish(model, world.sid_table)
        return before, model, table, summary

    _, plain, plain_table, plain_summary = erased(0)
    start, repaired, table, summary = erased(12)
    assert (table.codes == plain_table.codes).all() and not (table.codes == world.sid_table.codes).all()
    assert torch.equal(repaired.codes.cpu(), torch.as_tensor(table.codes))
    assert plain_summary["repair_losses"] == [] and len(summary["repair_losses"]) == 3
    moved = [not torch.equal(a, b) for a, b in zip(start.parameters(), repaired.parameters(), strict=True)]
    assert any(moved)
    same = [torch.equal(a, b) for a, b in zip(start.parameters(), plain.parameters(), strict=True)]
    assert all(same)  # without repair the commit leaves the weights alone


def repaired_with(world, **anchors):
    """(TRACER after a 30-step repair with the given anchor weights, its model, one forget/retain batch);
    the same erasure, commit and repair seed otherwise."""
    cls = method_class("tracer")
    settings = {"tau": 0.5, "repair_steps": 30, "repair_lr": 3e-3, "repair_windows": 4,
                "kl_without_concept": True, **anchors}  # fmt: skip
    config = build_config(cls, settings)
    model, context, batch = make_context(world, True)
    method = cls(config, context)
    method.setup(model)
    with torch.no_grad():
        method.phi += 3.0 * torch.randn(method.phi.shape, generator=torch.Generator().manual_seed(3),
                                        dtype=method.phi.dtype)  # fmt: skip
    method.finish(model, world.sid_table)
    return method, model, batch


def test_repair_kl_holds_the_retain_predictions_at_the_cut_parent(world):
    """``repair_kl``: after the repair the retain targets' token distributions sit closer to the KL
    target (the parent with the concept's branches cut) than after the plain repair."""
    divergences = {}
    for weight in (0.0, 30.0):
        method, model, batch = repaired_with(world, repair_kl=weight)
        with torch.no_grad():
            log_probs = level_log_probs(model.eval(), batch.retain)
            divergences[weight] = float(level_kl(log_probs, method.retain_kl_target(batch.retain)))
    assert divergences[30.0] < 0.3 * divergences[0.0]


def test_repair_forget_kl_holds_the_forget_predictions_at_the_cut_parent(world):
    """``repair_forget_kl``: the forget targets' distributions after the repair sit closer to the cut
    parent's (the forget KL of ``forget_kl``) than after the plain repair, which never sees them."""
    divergences = {}
    for weight in (0.0, 30.0):
        method, model, batch = repaired_with(world, repair_forget_kl=weight)
        with torch.no_grad():
            log_probs, _, _ = forget_log_probs(model.eval(), batch.forget, None)
            parent, _, _ = forget_log_probs(method.context.reference, batch.forget, None)
            target = reweighted_tokens(parent, method.kl_log_weights[target_items(batch.forget)])
            divergences[weight] = float(level_kl(log_probs, target))
    assert divergences[30.0] < 0.3 * divergences[0.0]


def test_repair_forget_pushes_the_forget_targets_down_to_its_floor_and_no_further(world):
    """``repair_forget``: with a floor no target reaches, the repair lowers the forget targets' SID
    log-likelihood against the plain repair; with a floor every target is already below, the term has
    no gradient and the repair is the plain one (dropout off, so both runs draw the same noise)."""
    likelihoods = {}
    for weight, floor in ((0.0, -30.0), (3.0, -1.0e4), (3.0, -1.0e-6)):
        method, model, batch = repaired_with(
            world, repair_forget=weight, repair_forget_floor=floor, dropout=False
        )
        with torch.no_grad():
            log_probs, _, _ = forget_log_probs(model.eval(), batch.forget, None)
            codes = model.codes[target_items(batch.forget)]
            likelihoods[weight, floor] = float(hard_log_likelihood(log_probs, codes).mean())
    plain = likelihoods[0.0, -30.0]
    assert likelihoods[3.0, -1.0e4] < plain - 1.0
    assert likelihoods[3.0, -1.0e-6] == pytest.approx(plain, abs=1e-5)


def test_the_cli_setting_reaches_the_erasure_and_its_manifest(tmp_path):
    """``--set repair_steps=N`` from the command line: the manifest records the setting and N's losses."""
    import json

    from tracer.cli import main

    world = write_world(tmp_path / "w")
    out = tmp_path / "erased"
    args = ["erase", str(world.model_dir), "--data", str(world.data_dir), "--concept", "Horror"]
    settings = ["--method", "tracer", "--set", "steps=2", "--set", "repair_steps=3"]
    assert main([*args, *settings, "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["repair_steps"] == 3 and len(manifest["summary"]["repair_losses"]) == 2


def test_the_repair_forget_batches_follow_the_erasure_rule(world):
    """``repair_forget_kl`` draws its forget batches as the erasure does: windows on a causal model
    while ``forget_windows`` > 0, single examples of ``batch_size`` otherwise (never an empty batch)."""
    for forget_windows in (0, 2):
        method, model, _ = repaired_with(world, repair_forget_kl=1.0, forget_windows=forget_windows)
        batch = method.repair_forget_batches.sample()
        windows = hasattr(batch, "loss_mask")
        assert windows == (model.batch_kind == "sequence" and forget_windows > 0)
        scored = scored_targets(batch)
        assert scored.numel() > 0 and torch.as_tensor(method.context.concept.item_mask)[scored].all()
        if not windows:
            assert len(scored) == method.config.batch_size


@pytest.mark.parametrize("decay, expected", [(True, [0.3, 0.225, 0.15, 0.075]), (False, [0.3] * 4)])
def test_repair_schedule_falls_linearly_to_zero_or_stays(decay, expected):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.3)
    schedule = repair.repair_schedule(optimizer, 4, decay)
    rates = []
    for _ in range(4):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates == pytest.approx(expected, abs=1e-12)
    assert decay or rates == [0.3] * 4  # exactly: the constant schedule leaves the repair as it was


def test_tracer_passes_repair_decay_to_the_repair_and_it_changes_the_weights(world, monkeypatch):
    cls = method_class("tracer")
    calls = []

    def recorded(*args, **kwargs):
        calls.append(kwargs["decay"])
        return real(*args, **kwargs)

    real = repair.retain_repair
    monkeypatch.setattr("tracer.unlearning.tracer.retain_repair", recorded)
    weights = {}
    for decay in (False, True):
        config = build_config(cls, {"tau": 0.5, "repair_steps": 6, "repair_lr": 3e-3, "repair_windows": 4,
                                    "repair_decay": decay})  # fmt: skip
        model, context, _ = make_context(world, cls.wants_reference(config))
        method = cls(config, context)
        method.setup(model)
        method.finish(model, world.sid_table)
        weights[decay] = [p.detach().clone() for p in model.parameters()]
    assert calls == [False, True]
    assert any(not torch.equal(a, b) for a, b in zip(weights[False], weights[True], strict=True))
