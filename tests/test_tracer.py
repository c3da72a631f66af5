"""TRACER's properties: phi = 0 is the plain model, the Eq. 11 mask, the coherence term, the commit."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from tests.helpers.erasure_world import make_context, write_world
from tracer.errors import UserError
from tracer.model.base import PAD_ITEM
from tracer.model.decoding import pad_histories
from tracer.semantic_ids.sid_table import SidTable
from tracer.training.batches import SequenceBatch, TargetBatch
from tracer.unlearning.base import build_config
from tracer.unlearning.batches import ForgetRetainBatch, TargetSampler, WindowSampler
from tracer.unlearning.coherence import nearest_retain_items
from tracer.unlearning.methods import method_class
from tracer.unlearning.objectives import kl_to_reference, level_kl, level_log_probs, nll, target_items
from tracer.unlearning.runner import run_steps
from tracer.unlearning.tracer import (
    concept_only_children,
    expected_log_likelihood,
    floored,
    retain_branch_log_shares,
    retain_positions,
    reweighted_tokens,
    selective_mask,
)


@pytest.fixture(scope="module", params=["causal", "tiger"])
def world(request, tmp_path_factory):
    return write_world(tmp_path_factory.mktemp(f"world-{request.param}"), backbone=request.param)


def tracer_method(world, **settings):
    """TRACER's step at the anchored setting (Eq. 11's mask on, a KL anchor to the parent), the one
    whose terms these tests check one at a time; ``settings`` override it."""
    cls = method_class("tracer-anchored")
    config = build_config(cls, settings)
    model, context, batch = make_context(world, cls.wants_reference(config))
    method = cls(config, context)
    method.setup(model)
    return model.eval(), method, batch


def test_phi_zero_reproduces_stored_codes(world):
    model, method, _ = tracer_method(world)  # default tau 0.005
    q = method.assignment()
    stored = world.sid_table.level_codes[method.items.numpy()]
    assert np.array_equal(q.argmax(-1).numpy(), stored)


def test_phi_zero_gives_the_plain_models_loss(world):
    model, method, batch = tracer_method(world, tau=1e-6)  # q is one-hot to float precision
    with torch.no_grad():
        plain_retain, plain_forget = nll(model, batch.retain), -nll(model, batch.forget)
        model.soft_codes = method.soft_codes(model, method.assignment())
        soft_retain = nll(model, batch.retain)
        soft_forget = method.forget_and_coherence(model, batch.forget)[0]
    torch.testing.assert_close(soft_retain, plain_retain, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(soft_forget, plain_forget, rtol=1e-5, atol=1e-5)


def test_selective_mask_hand_built_case():
    rho = torch.tensor([[0.5, 0.3, 0.2]], dtype=torch.float64)  # L = 1, K = 3
    q = torch.tensor([[[0.0, 1.0, 0.0]], [[0.5, 0.0, 0.5]]], dtype=torch.float64)  # rho_bar = 0.3, 0.35
    grad = torch.tensor([[[1.0, 1.0, -1.0]], [[-2.0, 3.0, 0.0]]], dtype=torch.float64)
    mask = selective_mask(q, rho, grad)
    # item 0: rho > 0.3 only for k=0 (0.5); grad > 0 there -> 1 ; k=1 rho == rho_bar -> 0
    # item 1: rho > 0.35 only for k=0, but grad < 0 there -> 0
    assert mask.tolist() == [[[1.0, 0.0, 0.0]], [[0.0, 0.0, 0.0]]]


def test_expected_log_likelihood_ignores_out_of_vocab_tokens():
    log_probs = torch.tensor([[[-0.1, -2.5, float("-inf")]]])
    labels = torch.tensor([[[0.25, 0.75, 0.0]]])
    assert float(expected_log_likelihood(log_probs, labels)) == pytest.approx(0.25 * -0.1 + 0.75 * -2.5)


def test_coherence_matches_direct_computation(world):
    model, method, batch = tracer_method(world)
    with torch.no_grad():
        model.soft_codes = method.soft_codes(model, method.assignment())
        value = method.forget_and_coherence(model, batch.forget)[1]
        direct = 0.0
        for row in range(len(batch.forget.targets)):
            history = batch.forget.histories[row : row + 1]
            for neighbour in method.neighbours[batch.forget.targets[row]].tolist():
                log_probs = model.next_item_log_probs(history, torch.tensor([neighbour]))[0]
                codes = model.codes[neighbour]
                direct -= float(log_probs[torch.arange(model.n_levels), codes].sum())
        direct /= len(batch.forget.targets) * method.neighbours.shape[1]
    assert float(value) == pytest.approx(direct, rel=1e-5)


def test_nearest_retain_items_brute_force():
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(12, 5))
    mask = np.zeros(12, dtype=bool)
    mask[[1, 4, 7]] = True
    neighbours = nearest_retain_items(vectors, mask, 3)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for item in (1, 4, 7):
        retain = [j for j in range(12) if not mask[j]]
        expected = sorted(retain, key=lambda j: -unit[item] @ unit[j])[:3]
        assert neighbours[item].tolist() == expected
    assert (neighbours[~mask] == -1).all()


def test_phi_learns_where_the_assignment_is_soft(world):
    model, method, batch = tracer_method(world, tau=2.0, lr_phi=1.0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(3):
        method.step(model, batch, optimizer)
    assert float(method.phi.detach().abs().sum()) > 0


def test_frozen_phi_ablation_never_moves(world):
    cls = method_class("tracer-no-reassign")
    config = build_config(cls, {"tau": 2.0})
    model, context, batch = make_context(world, cls.wants_reference(config))
    method = cls(config, context)
    method.setup(model)
    method.step(model, batch, torch.optim.AdamW(model.parameters(), lr=1e-3))
    assert float(method.phi.detach().abs().sum()) == 0.0


def test_commit_keeps_retain_sids_and_every_item_reachable(world):
    model, method, _ = tracer_method(world)
    stored = world.sid_table.level_codes[method.items.numpy()]
    with torch.no_grad():  # force every concept item onto the next level-1 codeword
        method.phi[torch.arange(len(method.items)), 0, torch.as_tensor((stored[:, 0] + 1) % 4)] = 1e6
    new_table, summary = method.finish(model, world.sid_table)
    assert summary["items_reassigned"] == len(method.items) and summary["levels_reassigned_per_level"][
        0
    ] == len(method.items)
    codes = new_table.codes
    assert len({tuple(row) for row in codes.tolist()}) == len(codes)  # unique
    concept = method.context.concept.item_mask
    assert np.array_equal(codes[~concept], world.sid_table.codes[~concept])  # retain untouched
    assert (codes[:, :-1] < new_table.codebook_size).all() and (codes[:, -1] < new_table.dedup_capacity).all()
    assert np.array_equal(model.codes.numpy(), codes)
    trie = new_table.trie()
    assert sorted(trie.leaf_items.tolist()) == list(range(len(codes)))  # decoding reaches every item
    assert len(summary["entanglement_before"]) == len(summary["entanglement_after"]) == new_table.levels


def test_step_updates_phi_by_the_masked_gradient_of_the_whole_objective(world):
    """One step: phi moves by -lr_phi * M * dL/dphi, with M built from d(lambda1 L_F)/dphi alone
    (Eq. 10-11), and theta gets dL/dtheta of the whole objective, both computed here independently
    with autograd.grad on a copy of the model."""
    model, method, batch = tracer_method(
        world, tau=2.0, lr_phi=0.5, lambda1=0.7, lambda2=0.3, grad_clip=float("inf"), retain_kl=0.0
    )  # Eq. 10 as written: no added retain KL
    twin = copy.deepcopy(model)
    config = method.config
    q = method.assignment()
    twin.soft_codes = method.soft_codes(twin, q)
    forget_ll, coherence, _, _ = method.forget_and_coherence(twin, batch.forget)
    forget = config.lambda1 * forget_ll
    total = nll(twin, batch.retain) + forget + config.lambda2 * coherence
    total = total + config.lambda3 * method.phi.abs().sum()
    (forget_grad,) = torch.autograd.grad(forget, method.phi, retain_graph=True)
    total_grad, *theta_grads = torch.autograd.grad(total, [method.phi, *twin.parameters()], allow_unused=True)
    mask = selective_mask(q.detach(), method.rho, forget_grad)
    assert 0 < float(mask.sum()) < mask.numel()  # the case is not trivial
    expected = -config.lr_phi * mask * total_grad

    method.step(model, batch, torch.optim.SGD(model.parameters(), lr=0.0))
    torch.testing.assert_close(method.phi.detach(), expected, rtol=1e-6, atol=1e-9)
    for parameter, theta_grad in zip(model.parameters(), theta_grads, strict=True):
        if theta_grad is None:
            assert parameter.grad is None or not parameter.grad.any()
        else:
            torch.testing.assert_close(parameter.grad, theta_grad, rtol=1e-5, atol=1e-7)


def perturb(model, scale: float = 0.05, seed: int = 0) -> None:
    """Move every weight of ``model`` by Gaussian noise, in place (the frozen parent keeps its own)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(scale * torch.randn(parameter.shape, generator=generator))


@pytest.mark.parametrize("anchor", [False, True])
def test_forget_windows_give_the_same_terms_as_single_examples(tmp_path, anchor):
    """Scoring the forget targets of windows in one pass (with the neighbours' history caches sliced
    from it) gives exactly the L_F and L_Coh of the same (history, target) examples one by one, with
    the plain and the parent-anchored coherence term."""
    world = write_world(tmp_path, backbone="causal")
    model, method, _ = tracer_method(world, tau=2.0, forget_kl=1.0, coherence_anchor=anchor)
    perturb(model)  # away from the parent, so the forget KL and the anchored hinge are not all zero
    forget_mask = method.context.targets.forget_targets
    sequences = method.context.sequences
    max_history = model.config.max_history
    windows = WindowSampler(sequences, forget_mask, 1000, max_history, seed=0).sample()
    singles = TargetSampler(sequences, forget_mask, 10_000, max_history, seed=0)
    singles = singles.rows(np.arange(len(singles)))
    assert int(windows.loss_mask.sum()) == len(singles.targets)  # every forget target once
    with torch.no_grad():
        model.soft_codes = method.soft_codes(model, method.assignment())
        from_windows = method.forget_and_coherence(model, windows)
        from_singles = method.forget_and_coherence(model, singles)
    for a, b in zip(from_windows, from_singles):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_retain_positions_are_the_real_items_after_a_real_item_outside_the_concept():
    sequences = torch.tensor([[PAD_ITEM, 3, 5, 7], [2, 9, 5, 4]])
    concept = torch.zeros(10, dtype=torch.bool)
    concept[5] = True
    batch = SequenceBatch(sequences, torch.zeros_like(sequences, dtype=torch.bool))
    expected = torch.tensor([[False, False, False, True], [False, True, False, True]])
    assert torch.equal(retain_positions(batch, concept), expected)


def test_window_retain_is_the_nll_of_the_retain_targets_inside_the_forget_windows(tmp_path):
    """``window_retain``: the term scored from the forget windows' own pass equals the mean next-SID NLL
    of their retain targets taken one by one (history: the window before the target), and its weight
    enters the step's objective."""
    world = write_world(tmp_path, backbone="causal")
    model, method, batch = tracer_method(world, tau=2.0, window_retain=1.0)
    sequences, max_history = method.context.sequences, model.config.max_history
    windows = WindowSampler(
        sequences, method.context.targets.forget_targets, 1000, max_history, seed=0
    ).sample()
    positions = retain_positions(windows, method.concept_mask)
    assert positions.any() and not (positions & windows.loss_mask).any()
    rows, columns = positions.nonzero(as_tuple=True)
    histories = [windows.sequences[r, :c].numpy() for r, c in zip(rows.tolist(), columns.tolist())]
    singles = TargetBatch(
        pad_histories([h[h != PAD_ITEM] for h in histories], max_history), windows.sequences[rows, columns]
    )
    with torch.no_grad():
        model.soft_codes = method.soft_codes(model, method.assignment())
        window_nll = method.forget_and_coherence(model, windows)[3]
        expected = nll(model, singles)
        model.soft_codes = None
    torch.testing.assert_close(window_nll, expected, rtol=1e-4, atol=1e-5)
    both = ForgetRetainBatch(windows, batch.retain)
    loss = float(method.step(model, both, torch.optim.SGD(model.parameters(), lr=0.0))["loss"])
    _, off, _ = tracer_method(world, tau=2.0, window_retain=0.0)
    without = float(off.step(model, both, torch.optim.SGD(model.parameters(), lr=0.0))["loss"])
    window_term = float(method.last_terms["window_retain_nll"])
    assert window_term > 0 and math.isclose(loss - without, window_term, rel_tol=1e-4)


def test_forget_floor_stops_the_push_below_it():
    log_likelihoods = torch.tensor([-3.0, -20.0], requires_grad=True)
    floored(log_likelihoods, -10.0).mean().backward()
    assert log_likelihoods.grad.tolist() == [0.5, 0.0]
    assert floored(log_likelihoods, None) is log_likelihoods


def test_retain_kl_vanishes_at_the_parent_and_pulls_back_towards_it(world):
    """The optional KL(parent || model) retain term is 0 with a zero gradient at the parent (so the
    first step is Eq. 10's), equals KL computed level by level once the model moved, and a small
    gradient step on it brings the model's retain distributions back towards the parent's."""
    model, method, batch = tracer_method(world, retain_kl=3.0)
    assert method.context.reference is not None
    parameters = [p for p in model.parameters() if p.requires_grad]

    def gradients(loss):
        return torch.autograd.grad(loss, parameters, allow_unused=True)

    def with_kl():
        retain, divergence = method.retain_terms(model, batch.retain)
        return retain + method.config.retain_kl * divergence

    torch.testing.assert_close(with_kl(), nll(model, batch.retain))
    for a, b in zip(gradients(nll(model, batch.retain)), gradients(with_kl())):
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)

    with torch.no_grad():
        for parameter in parameters:
            parameter.add_(0.05 * torch.randn_like(parameter))
    log_p = level_log_probs(model, batch.retain)
    with torch.no_grad():
        log_q = level_log_probs(method.context.reference, batch.retain)
    by_hand = 0.0
    for row in range(log_p.shape[0]):
        for level in range(log_p.shape[1]):
            valid = torch.isfinite(log_q[row, level])
            p, q = log_p[row, level, valid].exp(), log_q[row, level, valid].exp()
            by_hand += float((q * (q.log() - p.log())).sum().detach())
    divergence = by_hand / (log_p.shape[0] * log_p.shape[1])
    assert divergence > 0
    extra = with_kl() - nll(model, batch.retain)
    assert float(extra.detach()) == pytest.approx(3.0 * divergence, rel=1e-4)

    kl = kl_to_reference(model, method.context.reference, batch.retain)
    grads = gradients(kl)
    with torch.no_grad():
        for parameter, grad in zip(parameters, grads):
            if grad is not None:
                parameter.sub_(1e-2 * grad)
    after = kl_to_reference(model, method.context.reference, batch.retain)
    assert float(after.detach()) < float(kl.detach())


@pytest.mark.parametrize("dropout", [True, False])
def test_dropout_switch_decides_whether_the_kl_starts_at_zero(world, dropout):
    """With ``dropout`` False the erasure steps run in eval mode, so while the weights still equal the
    parent's (lr 1e-12: lr must be > 0) the KL-to-parent term is 0; with dropout active the same weights
    already give a positive KL, a pull away from the parent that the anchor should not have."""
    model, method, _ = tracer_method(
        world, retain_kl=3.0, lr=1e-12, lambda1=0.0, steps=3, tau=1e-6, dropout=dropout
    )
    log = run_steps(method, model, method.context, method.config)
    divergences = [entry["retain_kl"] for entry in log]
    if dropout:
        assert min(divergences) > 1e-4
    else:
        assert max(divergences) == pytest.approx(0.0, abs=1e-6)


def test_concept_only_children_hand_built_case():
    """A token is cut after an item's prefix when the branch it opens holds concept items only."""
    codes = np.array([[0, 0], [0, 1], [1, 0], [2, 0], [2, 1]])
    concept = np.array([False, True, True, True, False])
    cut = concept_only_children(codes, concept, 3)
    # level 0 (root): branch 1 is concept-only; 0 and 2 hold retain items; every item sees the root
    assert cut[:, 0].tolist() == [[False, True, False]] * 5
    # level 1: under (0,) token 1 is concept-only, under (1,) token 0, under (2,) token 0
    assert cut[0, 1].tolist() == [False, True, False]
    assert cut[2, 1].tolist() == [True, False, False]
    assert cut[4, 1].tolist() == [True, False, False]


def test_retain_branch_log_shares_hand_built_case():
    """Each branch after an item's prefix is weighted by (retain targets + 1 per retain item) / (all
    targets + 1 per item) under it: exactly the concept-only branches get weight 0, retain-only and
    empty branches 1."""
    codes = np.array([[0, 0], [0, 1], [1, 0], [2, 0], [2, 1]])
    concept = np.array([False, True, True, True, False])
    counts = np.array([3, 1, 4, 0, 2])  # weights 4, 2, 5, 1, 3
    shares = np.exp(retain_branch_log_shares(codes, concept, 3, counts))
    # root: branch 0 holds items 0 (retain, 4) and 1 (concept, 2); 1 only item 2; 2 items 3 (c, 1), 4 (r, 3)
    np.testing.assert_allclose(shares[:, 0], [[4 / 6, 0.0, 3 / 4]] * 5, rtol=1e-6)
    np.testing.assert_allclose(shares[0, 1], [1.0, 0.0, 1.0])  # under (0,): retain, concept, empty
    np.testing.assert_allclose(shares[4, 1], [0.0, 1.0, 1.0])  # under (2,): concept, retain, empty
    assert np.array_equal(shares == 0, concept_only_children(codes, concept, 3))


def test_reweighted_tokens_renormalises_over_the_weights():
    log_probs = torch.tensor([[[0.5, 0.3, 0.2]]]).log()
    removed = torch.tensor([[[0.0, float("-inf"), 0.0]]])
    torch.testing.assert_close(
        reweighted_tokens(log_probs, removed).exp(), torch.tensor([[[5 / 7, 0.0, 2 / 7]]])
    )
    halved = torch.tensor([[[1.0, 0.5, 1.0]]]).log()
    torch.testing.assert_close(
        reweighted_tokens(log_probs, halved).exp(), torch.tensor([[[0.5, 0.15, 0.2]]]) / 0.85
    )


def test_a_level_cut_whole_drops_out_of_the_kl():
    """Under a concept-only prefix every token is cut: that level's target is all -inf (no NaN) and
    adds nothing to the KL, while the other levels count as usual."""
    log_probs = torch.tensor([[[0.5, 0.3, 0.2], [0.6, 0.2, 0.2]]]).log()
    cut = torch.tensor([[[False, True, False], [True, True, True]]])
    target = reweighted_tokens(log_probs, torch.zeros(1, 2, 3).masked_fill(cut, float("-inf")))
    assert bool(torch.isneginf(target[0, 1]).all())
    model = torch.tensor([[[0.4, 0.4, 0.2], [0.1, 0.1, 0.8]]]).log()
    first = (5 / 7) * math.log((5 / 7) / 0.4) + (2 / 7) * math.log((2 / 7) / 0.2)
    assert float(level_kl(model, target)) == pytest.approx(first / 2)


def descend(loss, parameters, lr: float) -> None:
    """One plain gradient step on ``loss`` over ``parameters``, in place."""
    grads = torch.autograd.grad(loss, parameters, allow_unused=True)
    with torch.no_grad():
        for parameter, grad in zip(parameters, grads):
            if grad is not None:
                parameter.sub_(lr * grad)


@pytest.mark.parametrize("branch_shares", [False, True])
def test_kl_without_concept_pulls_mass_off_the_concept_only_branches(world, branch_shares):
    """With ``kl_without_concept`` the anchor's target is the parent minus its concept-only branches
    (and, with ``kl_branch_shares``, with every other branch scaled by its retain share): at the parent
    the term is positive wherever the parent put mass there, and a gradient step on it lowers the
    model's mass on those tokens for the retain targets."""
    model, method, batch = tracer_method(
        world, retain_kl=1.0, kl_without_concept=True, kl_branch_shares=branch_shares
    )
    cut = torch.isneginf(method.kl_log_weights[target_items(batch.retain)])  # (N, n_levels, V)
    assert bool(cut.any())
    parameters = [p for p in model.parameters() if p.requires_grad]

    def cut_mass() -> float:
        with torch.no_grad():
            return float(level_log_probs(model, batch.retain).exp()[cut].sum())

    before = cut_mass()
    divergence = method.retain_terms(model, batch.retain)[1]
    assert float(divergence.detach()) > 0
    descend(divergence, parameters, lr=1e-2)
    assert cut_mass() < before


def soft_forget_terms(model, method, batch):
    """(L_F, L_Coh, forget KL) of ``batch.forget`` with the concept items' soft tokens in place, as a step
    computes them."""
    model.soft_codes = method.soft_codes(model, method.assignment())
    terms = method.forget_and_coherence(model, batch.forget)
    model.soft_codes = None
    return terms


def test_forget_kl_moves_forget_histories_off_the_concept_only_branches(world):
    """``forget_kl``: at the parent the KL to the cut parent is positive on the forget targets (the
    parent puts mass on concept-only branches there), and a gradient step on it lowers both the KL and
    the model's mass on those branches for the same forget histories."""
    model, method, batch = tracer_method(world, forget_kl=2.0, tau=1e-6)
    assert method.context.reference is not None
    cut = torch.isneginf(method.kl_log_weights[target_items(batch.forget)])  # (N, n_levels, V)
    assert bool(cut.any())
    parameters = [p for p in model.parameters() if p.requires_grad]

    def forget_kl():
        return soft_forget_terms(model, method, batch)[2]

    def cut_mass() -> float:
        with torch.no_grad():
            return float(level_log_probs(model, batch.forget).exp()[cut].sum())

    divergence = forget_kl()
    assert float(divergence.detach()) > 0
    before = cut_mass()
    descend(divergence, parameters, lr=1e-2)
    assert cut_mass() < before
    assert float(forget_kl().detach()) < float(divergence.detach())


def test_anchored_coherence_is_a_hinge_at_the_parent(world):
    """``coherence_anchor``: L_Coh is 0 at the parent; once the model moves it equals the mean over
    forget targets and neighbours of max(0, parent's - model's SID log-likelihood of the neighbour),
    computed here directly one (history, neighbour) pair at a time, and a gradient step on it lowers it."""
    model, method, batch = tracer_method(world, coherence_anchor=True, tau=1e-6)
    parent = method.context.reference
    parameters = [p for p in model.parameters() if p.requires_grad]

    def anchored():
        return soft_forget_terms(model, method, batch)[1]

    assert float(anchored().detach()) == pytest.approx(0.0, abs=1e-6)
    perturb(model, scale=0.2)
    value = anchored()
    direct, below = 0.0, 0
    with torch.no_grad():
        for row in range(len(batch.forget.targets)):
            history = batch.forget.histories[row : row + 1]
            for neighbour in method.neighbours[batch.forget.targets[row]].tolist():
                candidate, levels = torch.tensor([neighbour]), torch.arange(model.n_levels)
                codes = model.codes[neighbour]
                mine = float(model.next_item_log_probs(history, candidate)[0][levels, codes].sum())
                theirs = float(parent.next_item_log_probs(history, candidate)[0][levels, codes].sum())
                direct += max(0.0, theirs - mine)
                below += theirs > mine
        direct /= len(batch.forget.targets) * method.neighbours.shape[1]
    assert 0 < below < len(batch.forget.targets) * method.neighbours.shape[1]  # the hinge is active on some
    assert float(value.detach()) == pytest.approx(direct, rel=1e-4)
    descend(value, parameters, lr=1e-2)
    assert float(anchored().detach()) < float(value.detach())


def test_commit_takes_the_argmax_of_the_learned_assignment(world):
    """Random phi: every concept item's committed level codes are argmax_k q_phi (an argmin, or the
    stored codes, fails); phi = 0 commits the stored codes unchanged."""
    model, method, _ = tracer_method(world, tau=0.5)
    stored_table = world.sid_table
    same, _ = method.finish(copy.deepcopy(model), stored_table)
    assert np.array_equal(same.codes, stored_table.codes)  # phi = 0: nothing moves
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        method.phi += 3.0 * torch.randn(method.phi.shape, generator=generator, dtype=method.phi.dtype)
    expected = method.assignment().argmax(-1).numpy()
    assert (expected != stored_table.level_codes[method.items.numpy()]).any()  # the test can tell
    new_table, summary = method.finish(model, stored_table)
    if summary["items_on_a_later_choice"] == summary["items_kept_for_capacity"] == 0:
        np.testing.assert_array_equal(new_table.level_codes[method.items.numpy()], expected)


def test_chained_tracer_starts_from_the_artifacts_own_codes(tmp_path):
    """TRACER then TRACER: the second erasure's assignment at phi = 0 is the first artifact's own table
    (not the tokenizer's original codes), so with phi frozen it commits that table unchanged."""
    from tracer.cli import main

    world = write_world(tmp_path / "w")
    first, second = tmp_path / "first", tmp_path / "second"
    erase = ["erase", "--data", str(world.data_dir), "--concept", "Horror", "--method", "tracer"]
    forced = ["--set", "steps=3", "--set", "tau=0.5", "--set", "lr_phi=50", "--set", "use_mask=false"]
    assert main([erase[0], str(world.model_dir), *erase[1:], *forced, "--out", str(first)]) == 0
    moved = SidTable.load(first / "sids")
    assert not np.array_equal(moved.codes, world.sid_table.codes)  # the first erasure moved items
    frozen = ["--set", "reassign=false", "--set", "steps=1"]
    assert main([erase[0], str(first), *erase[1:], *frozen, "--out", str(second)]) == 0
    np.testing.assert_array_equal(SidTable.load(second / "sids").codes, moved.codes)


def test_a_full_group_sends_the_item_to_its_next_choice_instead_of_failing():
    """The commit never overflows the dedup capacity: an item whose best group is full takes its next
    candidate; with no candidate free it keeps its own codes."""
    codes = np.array([[0, 0]] * 2 + [[1, 1]] * 5 + [[1, 0]])
    table = SidTable.from_level_codes([str(i) for i in range(8)], codes, codebook_size=2)
    table = SidTable(table.item_ids, table.codes, 2, dedup_capacity=5)  # group (1,1) is full
    candidates = np.array([[[1, 1], [0, 1]], [[1, 1], [1, 1]]])
    new_table, chosen = table.place([0, 1], candidates)
    np.testing.assert_array_equal(chosen, [1, -1])
    np.testing.assert_array_equal(new_table.codes[0], [0, 1, 0])  # its second choice
    np.testing.assert_array_equal(new_table.codes[1], [0, 0, 0])  # its own codes, the freed digit
    assert len({tuple(r) for r in new_table.codes.tolist()}) == 8


def test_sharpness_aware_forget_takes_the_gradient_one_relearning_step_away(world):
    """``sharpness_rho``: theta's gradient is that of the retain-side terms at theta plus that of lambda1
    L_F at theta + rho * g / ||g|| (g: the gradient of lambda1 L_F, the direction that raises the forget
    targets' likelihood), computed here on a twin; the weights are restored after the step."""
    model, method, batch = tracer_method(
        world, tau=2.0, lambda1=0.7, lambda2=0.3, grad_clip=float("inf"), retain_kl=0.0, sharpness_rho=0.5
    )
    config = method.config
    twin = copy.deepcopy(model)
    before = [p.detach().clone() for p in model.parameters()]
    twin.soft_codes = method.soft_codes(twin, method.assignment())
    forget_ll, coherence, _, _ = method.forget_and_coherence(twin, batch.forget)
    rest = nll(twin, batch.retain) + config.lambda2 * coherence
    params = list(twin.parameters())
    rest_grads = torch.autograd.grad(rest, params, retain_graph=True, allow_unused=True)
    ascent = torch.autograd.grad(config.lambda1 * forget_ll, params, retain_graph=True, allow_unused=True)
    norm = torch.sqrt(sum((g * g).sum() for g in ascent if g is not None))
    with torch.no_grad():
        for param, g in zip(params, ascent):
            if g is not None:
                param.add_(config.sharpness_rho * g / norm)
    moved_ll = method.forget_and_coherence(twin, batch.forget)[0]
    moved_grads = torch.autograd.grad(config.lambda1 * moved_ll, params, allow_unused=True)
    # the relearning step moved L_F
    assert float(moved_ll.detach()) != pytest.approx(float(forget_ll.detach()), rel=1e-4)

    method.step(model, batch, torch.optim.SGD(model.parameters(), lr=0.0))
    for parameter, old, at_theta, moved in zip(
        model.parameters(), before, rest_grads, moved_grads, strict=True
    ):
        assert torch.equal(parameter.detach(), old)
        expected = sum(g for g in (at_theta, moved) if g is not None)
        if isinstance(expected, int):
            assert parameter.grad is None or not parameter.grad.any()
        else:
            torch.testing.assert_close(parameter.grad, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("conflict", [True, False])
def test_projected_forget_drops_the_component_against_the_retain_gradient(world, conflict):
    """``project_forget``: theta's gradient is g_R + g_F - min(0, <g_F, g_R>) / ||g_R||^2 g_R (g_F of
    lambda1 L_F, g_R of the other terms, computed here on a twin), so it never points against g_R more
    than g_R itself; with L_F's sign flipped the inner product changes sign, and a positive one leaves
    g_F whole."""
    lambda1 = 0.7 if conflict else -0.7
    model, method, batch = tracer_method(
        world, tau=2.0, lambda1=lambda1, lambda2=0.3, grad_clip=float("inf"), retain_kl=0.0,
        project_forget=True,
    )  # fmt: skip
    twin = copy.deepcopy(model)
    twin.soft_codes = method.soft_codes(twin, method.assignment())
    forget_ll, coherence, _, _ = method.forget_and_coherence(twin, batch.forget)
    rest = nll(twin, batch.retain) + 0.3 * coherence + method.config.lambda3 * method.phi.abs().sum()
    params = list(twin.parameters())
    g_f = torch.autograd.grad(lambda1 * forget_ll, params, retain_graph=True, allow_unused=True)
    g_r = torch.autograd.grad(rest, params, allow_unused=True)
    zero = [torch.zeros_like(p) for p in params]
    g_f = [z if g is None else g for g, z in zip(g_f, zero)]
    g_r = [z if g is None else g for g, z in zip(g_r, zero)]
    dot = sum((f * r).sum() for f, r in zip(g_f, g_r))
    assert (float(dot) < 0) == conflict
    scale = min(float(dot), 0.0) / float(sum((r * r).sum() for r in g_r))

    method.step(model, batch, torch.optim.SGD(model.parameters(), lr=0.0))
    for parameter, f, r in zip(model.parameters(), g_f, g_r, strict=True):
        got = torch.zeros_like(f) if parameter.grad is None else parameter.grad
        torch.testing.assert_close(got, r + f - scale * r, rtol=1e-4, atol=1e-6)
    projected = sum(((p.grad - r) * r).sum() for p, r in zip(model.parameters(), g_r) if p.grad is not None)
    assert float(projected) >= -1e-6 * float(sum((r * r).sum() for r in g_r))


def test_projected_forget_refuses_the_sharpness_aware_step_before_any_work(world):
    with pytest.raises(UserError, match="project_forget=false or sharpness_rho=0"):
        tracer_method(world, project_forget=True, sharpness_rho=0.5)
