"""Beam search and exact scorer: beam == exact when wide enough, fast == reference loop, Filter tries,
catalogue mass, and the scoring metrics on hand-computed values."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from benchmarks import reference_decoding as reference
from torch import Tensor, nn

from tests.helpers.random_sids import random_histories, random_sid_table
from tracer.evaluation.scoring_metrics import best_concept_rank, concept_mass
from tracer.model.base import PAD_ITEM, GenerativeRecommender
from tracer.model.decoding import beam_search, exact_score_users, exact_scores, pad_histories, recommend_top_k
from tracer.model.registry import model_from_preset
from tracer.semantic_ids.trie import PrefixTrie


class TinyRecommender(GenerativeRecommender):
    """History = mean of item embeddings; prefix tokens mixed by per-position matrices; MLP -> logits."""

    def __init__(self, codes: Tensor, vocab_sizes: list[int], d_model: int = 16, hidden: int = 32) -> None:
        super().__init__(codes, vocab_sizes, d_model)
        self.position_mix = nn.Parameter(torch.randn(len(vocab_sizes), d_model, d_model) / math.sqrt(d_model))
        self.mlp = nn.Sequential(nn.Linear(d_model, hidden), nn.Tanh())
        self.heads = nn.ModuleList(nn.Linear(hidden, v) for v in vocab_sizes)

    def encode_history(self, histories: Tensor) -> Tensor:
        present = (histories != PAD_ITEM).float()  # (B, T)
        items = self.item_token_embeddings(histories).sum(dim=2)  # (B, T, d)
        return (items * present[..., None]).sum(dim=1) / present.sum(dim=1, keepdim=True).clamp_min(1.0)

    def prefix_log_probs(self, cache: Tensor, prefix_embeddings: Tensor) -> Tensor:
        level = prefix_embeddings.shape[2]
        mixed = torch.einsum("bwld,lde->bwe", prefix_embeddings, self.position_mix[:level])
        logits = 3.0 * self.heads[level](self.mlp(cache[:, None, :] + mixed))  # (B, W, vocab_l)
        padded = logits.new_full((*logits.shape[:2], self.max_vocab), float("-inf"))
        padded[..., : logits.shape[-1]] = logits
        return torch.log_softmax(padded, dim=-1)


def tiny_model(codes: Tensor, vocab_sizes: list[int], seed: int = 0) -> GenerativeRecommender:
    torch.manual_seed(seed)
    return TinyRecommender(codes, vocab_sizes).eval()


def registry_model(backbone: str):
    def make(codes: Tensor, vocab_sizes: list[int], seed: int = 0) -> GenerativeRecommender:
        torch.manual_seed(seed)
        return model_from_preset(backbone, "tiny", codes, vocab_sizes).eval()

    return make


MODEL_FACTORIES = {"tiny": tiny_model, "causal": registry_model("causal"), "tiger": registry_model("tiger")}


def exact_top(scores: Tensor, k: int) -> tuple[Tensor, Tensor]:
    top = scores.topk(k, dim=1)
    return top.indices, top.values


@pytest.fixture(params=sorted(MODEL_FACTORIES))
def make_model(request):
    return MODEL_FACTORIES[request.param]


def test_wide_beam_equals_exact_top_k(make_model):
    codes, vocab_sizes = random_sid_table(60, [3, 4, 2], seed=0)
    model = make_model(codes, vocab_sizes)
    trie = PrefixTrie.from_codes(codes, vocab_sizes)
    histories = random_histories(6, 5, len(codes), seed=1)
    items, scores = beam_search(model, trie, histories, k=10, beam_width=len(codes))
    expected_items, expected_scores = exact_top(exact_scores(model, trie, histories, prefix_chunk=5), 10)
    assert torch.equal(items, expected_items)
    torch.testing.assert_close(scores, expected_scores, rtol=1e-5, atol=1e-5)


def test_beam_20_is_exact_when_it_covers_every_inner_depth(make_model):
    # 4 x 5 base codes and many collisions: <= 20 prefixes at every inner depth, 80 items at the leaves
    codes, vocab_sizes = random_sid_table(80, [4, 5], seed=3)
    trie = PrefixTrie.from_codes(codes, vocab_sizes)
    assert max(len(trie.prefixes_at_depth(d)) for d in range(trie.n_levels)) <= 20 < trie.n_leaves
    model = make_model(codes, vocab_sizes)
    histories = random_histories(5, 4, len(codes), seed=4)
    items, scores = beam_search(model, trie, histories, k=10, beam_width=20)
    expected_items, expected_scores = exact_top(exact_scores(model, trie, histories), 10)
    assert torch.equal(items, expected_items)
    torch.testing.assert_close(scores, expected_scores, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("beam_width,k", [(1, 1), (3, 3), (7, 5)])
def test_fast_beam_equals_reference_loop(make_model, beam_width, k):
    codes, vocab_sizes = random_sid_table(50, [3, 3, 3], seed=5)
    model = make_model(codes, vocab_sizes)
    histories = random_histories(5, 4, len(codes), seed=6)
    items, scores = beam_search(model, PrefixTrie.from_codes(codes, vocab_sizes), histories, k, beam_width)
    ref_items, ref_scores = reference.reference_beam_search(
        model, reference.build_dict_trie(codes), histories, k, beam_width
    )
    assert items.tolist() == ref_items
    torch.testing.assert_close(scores, torch.tensor(ref_scores, dtype=torch.float32), rtol=1e-5, atol=1e-5)


def test_outputs_are_real_unique_sorted_and_scored_by_the_model(make_model):
    codes, vocab_sizes = random_sid_table(120, [2, 6, 4], seed=7)  # the root has 2 children < width
    model = make_model(codes, vocab_sizes)
    trie = PrefixTrie.from_codes(codes, vocab_sizes)
    histories = random_histories(8, 6, len(codes), seed=8)
    items, scores = beam_search(model, trie, histories, k=10, beam_width=12)
    assert bool((items >= 0).all()) and bool((items < len(codes)).all())
    assert bool(torch.isfinite(scores).all())
    assert all(len(set(row)) == len(row) for row in items.tolist())
    assert bool((scores[:, 1:] <= scores[:, :-1]).all())
    # each returned score is the model's own log p of that item's full SID
    exact = exact_scores(model, trie, histories)
    torch.testing.assert_close(scores, exact.gather(1, items), rtol=1e-5, atol=1e-5)


def test_catalogue_smaller_than_k_pads_with_minus_one():
    codes, vocab_sizes = random_sid_table(4, [2, 2], seed=9)
    model = tiny_model(codes, vocab_sizes)
    trie = PrefixTrie.from_codes(codes, vocab_sizes)
    histories = random_histories(3, 3, len(codes), seed=10)
    items, scores = beam_search(model, trie, histories, k=10, beam_width=10)
    assert sorted(items[:, :4].flatten().tolist()) == sorted(list(range(4)) * 3)
    assert bool((items[:, 4:] == -1).all()) and bool(torch.isneginf(scores[:, 4:]).all())
    assert bool(torch.isfinite(scores[:, :4]).all())


def test_exact_probabilities_sum_below_one_on_a_partial_table(make_model):
    codes, vocab_sizes = random_sid_table(30, [3, 4, 2], seed=11)
    model = make_model(codes, vocab_sizes)
    histories = random_histories(4, 5, len(codes), seed=12)
    total = exact_scores(model, PrefixTrie.from_codes(codes, vocab_sizes), histories).exp().sum(dim=1)
    assert bool((total < 1.0).all()) and bool((total > 0.0).all())


def test_exact_probabilities_sum_to_one_on_the_full_table(make_model):
    level_vocab = [3, 4, 2]
    full = torch.tensor(list(itertools.product(*[range(v) for v in level_vocab])))
    codes = torch.cat([full, torch.zeros(len(full), 1, dtype=torch.long)], dim=1)
    vocab_sizes = level_vocab + [1]
    model = make_model(codes, vocab_sizes)
    histories = random_histories(4, 5, len(codes), seed=13)
    scores = exact_scores(model, PrefixTrie.from_codes(codes, vocab_sizes), histories, prefix_chunk=3)
    torch.testing.assert_close(scores.exp().sum(dim=1), torch.ones(4), rtol=0, atol=1e-5)


def test_filter_trie_hides_removed_items(make_model):
    codes, vocab_sizes = random_sid_table(60, [3, 4, 2], seed=14)
    model = make_model(codes, vocab_sizes)
    trie = PrefixTrie.from_codes(codes, vocab_sizes)
    histories = random_histories(6, 5, len(codes), seed=15)
    full_scores = exact_scores(model, trie, histories)
    # remove each user's current favourites so the filter must change the lists
    removed = torch.zeros(len(codes), dtype=torch.bool)
    removed[full_scores.topk(3, dim=1).indices.flatten()] = True
    filtered = trie.without_items(removed)
    items, scores = beam_search(model, filtered, histories, k=10, beam_width=len(codes))
    assert not bool(removed[items].any())
    filtered_scores = exact_scores(model, filtered, histories)
    assert bool(torch.isneginf(filtered_scores[:, removed]).all())
    torch.testing.assert_close(filtered_scores[:, ~removed], full_scores[:, ~removed])
    torch.testing.assert_close(items, exact_top(filtered_scores, 10)[0])
    kept_ids = torch.nonzero(~removed).flatten().tolist()
    ref_items, _ = reference.reference_beam_search(
        model, reference.build_dict_trie(codes[~removed], kept_ids), histories[:3], 10, 12
    )
    assert beam_search(model, filtered, histories[:3], 10, 12)[0].tolist() == ref_items


def test_pad_histories_keeps_the_most_recent_items_left_padded():
    padded = pad_histories([np.array([1, 2, 3, 4, 5]), np.array([7]), np.array([], dtype=np.int64)], 3)
    assert padded.tolist() == [[3, 4, 5], [PAD_ITEM, PAD_ITEM, 7], [PAD_ITEM] * 3]


def test_user_level_helpers_equal_direct_calls():
    codes, vocab_sizes = random_sid_table(40, [3, 4], seed=16)
    model = tiny_model(codes, vocab_sizes)
    trie = PrefixTrie.from_codes(codes, vocab_sizes)
    generator = np.random.default_rng(17)
    histories = [generator.integers(0, len(codes), size=n) for n in (1, 8, 3, 12, 5)]
    items, scores = recommend_top_k(model, trie, histories, 5, 8, batch_size=2, max_history=6, progress=False)
    exact = exact_score_users(model, trie, histories, batch_size=3, max_history=6, progress=False)
    padded = pad_histories(histories, 6)
    direct_items, direct_scores = beam_search(model, trie, padded, 5, 8)
    assert items.shape == (5, 5) and items.dtype == np.int64
    np.testing.assert_array_equal(items, direct_items.numpy())
    np.testing.assert_allclose(scores, direct_scores.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(exact, exact_scores(model, trie, padded).numpy(), rtol=1e-5, atol=1e-5)


def test_concept_mass_and_best_concept_rank_match_hand_computed_values():
    probs = np.array([[0.1, 0.2, 0.3, 0.4], [0.5, 0.25, 0.125, 0.125]])
    scale = np.array([[0.5], [0.25]])  # unnormalised scores: p * scale, so normalisation matters
    scores = np.log(probs * scale)
    concept = np.array([False, True, False, True])
    np.testing.assert_allclose(concept_mass(scores, concept), [0.6, 0.375])
    np.testing.assert_array_equal(best_concept_rank(scores, concept), [1, 2])
    filtered = scores.copy()
    filtered[:, concept] = -np.inf  # a Filter trie: concept items unreachable
    np.testing.assert_allclose(concept_mass(filtered, concept), [0.0, 0.0])
    np.testing.assert_array_equal(best_concept_rank(filtered, concept), [3, 3])
    np.testing.assert_array_equal(
        best_concept_rank(torch.tensor(scores), np.array([1, 0, 0, 0], bool)), [4, 1]
    )
