"""PrefixTrie against brute-force Python sets on random code tables with shared prefixes."""

from __future__ import annotations

import itertools

import pytest
import torch

from tests.helpers.random_sids import random_sid_table
from tracer.semantic_ids.trie import PrefixTrie


@pytest.fixture(params=[(60, [3, 4, 2], 0), (200, [5, 3, 4], 1), (40, [2, 2], 2), (1, [3, 3], 3)])
def table(request):
    n_items, level_vocab, seed = request.param
    return random_sid_table(n_items, level_vocab, seed)


def test_allowed_continuations_equal_brute_force_sets(table):
    codes, vocab_sizes = table
    trie = PrefixTrie.from_codes(codes, vocab_sizes)
    rows = [tuple(row) for row in codes.tolist()]
    for depth in range(len(vocab_sizes)):
        # every prefix over the vocabularies, so absent prefixes are checked too
        candidates = list(itertools.product(*[range(v) for v in vocab_sizes[:depth]]))
        prefix_tokens = torch.tensor(candidates, dtype=torch.long).view(len(candidates), depth)
        nodes = trie.nodes_of_prefixes(prefix_tokens)
        mask = trie.allowed_mask(nodes)
        for prefix, node, row_mask in zip(candidates, nodes.tolist(), mask, strict=True):
            expected = {row[depth] for row in rows if row[:depth] == prefix}
            assert (node >= 0) == bool(expected)
            assert set(torch.nonzero(row_mask).flatten().tolist()) == expected


def test_every_item_reachable_and_leaf_item_inverts_codes(table):
    codes, vocab_sizes = table
    trie = PrefixTrie.from_codes(codes, vocab_sizes)
    leaves = trie.nodes_of_prefixes(codes)
    assert bool((leaves >= 0).all())
    assert torch.equal(trie.leaf_item(leaves), torch.arange(len(codes)))
    assert trie.n_leaves == len(codes)
    assert not trie.allowed_mask(leaves).any()  # leaves have no children


def test_step_walks_the_codes_and_rejects_absent_tokens(table):
    codes, vocab_sizes = table
    trie = PrefixTrie.from_codes(codes, vocab_sizes)
    nodes = torch.zeros(len(codes), dtype=torch.long)
    for level in range(len(vocab_sizes)):
        allowed = trie.allowed_mask(nodes)
        for token in range(trie.max_vocab):
            child = trie.step(nodes, torch.full_like(nodes, token))
            assert torch.equal(child >= 0, allowed[:, token])
        nodes = trie.step(nodes, codes[:, level])
        assert bool((trie.node_token[nodes] == codes[:, level]).all())
    assert torch.equal(trie.step(torch.tensor([-1]), torch.tensor([0])), torch.tensor([-1]))


def test_leaf_item_is_minus_one_off_full_depth(table):
    codes, vocab_sizes = table
    trie = PrefixTrie.from_codes(codes, vocab_sizes)
    inner = torch.arange(0, trie.level_offsets[-2])
    assert bool((trie.leaf_item(inner) == -1).all())
    assert int(trie.leaf_item(torch.tensor([-1]))) == -1


def test_prefixes_at_depth_are_the_distinct_prefixes_in_node_order(table):
    codes, vocab_sizes = table
    trie = PrefixTrie.from_codes(codes, vocab_sizes)
    for depth in range(len(vocab_sizes) + 1):
        prefixes = trie.prefixes_at_depth(depth)
        assert {tuple(row) for row in prefixes.tolist()} == {tuple(row[:depth]) for row in codes.tolist()}
        assert len(prefixes) == len({tuple(row) for row in prefixes.tolist()})
        start, stop = trie.nodes_at_depth(depth)
        assert torch.equal(trie.nodes_of_prefixes(prefixes), torch.arange(start, stop))


def test_without_items_removes_exactly_those_items(table):
    codes, vocab_sizes = table
    trie = PrefixTrie.from_codes(codes, vocab_sizes)
    drop = torch.rand(len(codes), generator=torch.Generator().manual_seed(7)) < 0.4
    filtered = trie.without_items(drop)
    assert filtered.n_items == len(codes)
    assert sorted(filtered.leaf_items.tolist()) == torch.nonzero(~drop).flatten().tolist()
    leaves = filtered.nodes_of_prefixes(codes)
    assert torch.equal(leaves >= 0, ~drop)
    assert torch.equal(filtered.leaf_item(leaves)[~drop], torch.nonzero(~drop).flatten())
    # no dangling inner nodes: every prefix left leads to at least one remaining item
    kept_rows = {tuple(row) for row in codes[~drop].tolist()}
    for depth in range(len(vocab_sizes)):
        assert {tuple(r) for r in filtered.prefixes_at_depth(depth).tolist()} == {
            r[:depth] for r in kept_rows
        }


def test_duplicate_codes_and_out_of_vocab_codes_are_rejected():
    with pytest.raises(ValueError, match="duplicate"):
        PrefixTrie.from_codes(torch.tensor([[0, 1], [0, 1]]), [2, 2])
    with pytest.raises(ValueError, match="outside"):
        PrefixTrie.from_codes(torch.tensor([[0, 2]]), [2, 2])


def test_sparse_storage_grows_with_items_not_vocab():
    codes = torch.tensor([[0, 0, 0], [4095, 4095, 0]])
    trie = PrefixTrie.from_codes(codes, [4096, 4096, 1])
    assert trie.n_nodes == 1 + 2 + 2 + 2
    assert all(
        t.numel() <= 2 * trie.n_nodes for t in (trie.transition_keys, trie.child_start, trie.node_token)
    )
    assert torch.equal(trie.leaf_item(trie.nodes_of_prefixes(codes)), torch.tensor([0, 1]))
