"""Prefix trie of the valid semantic IDs, for constrained decoding (docs/method.md §1.4).

Array-based and sparse, so it holds 1,000,000 items x 4 levels without a dense (nodes x vocab) table.

Node numbering: nodes are ordered by depth, and within a depth by the lexicographic order of their
prefix. The root (the empty prefix) is node 0; the depth-d nodes are ``level_offsets[d] ..
level_offsets[d + 1] - 1``; the leaves (depth ``n_levels``, one per item) come last. Because of this
order, ``node_parent * max_vocab + node_token`` is strictly increasing over the non-root nodes, so one
``searchsorted`` finds any transition, and the children of a node (or of a run of consecutive nodes
at one depth) form one contiguous, token-sorted range ``child_start .. child_end``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor


@dataclass(frozen=True, eq=False)
class PrefixTrie:
    """Trie over the SIDs of a catalogue; build it with :meth:`from_codes`.

    Tensors (all int64, n_nodes = 1 + number of distinct non-empty prefixes):
    ``node_parent`` (n_nodes,) parent node (-1 for the root); ``node_token`` (n_nodes,) token on the
    edge into the node (-1 for the root); ``child_start`` / ``child_end`` (n_nodes,) the range of the
    node's children; ``transition_keys`` (n_nodes - 1,) ``parent * max_vocab + token`` of nodes 1..;
    ``leaf_items`` (n_leaves,) catalogue item index of each leaf.
    ``n_items`` is the catalogue size (items left out of the trie, e.g. by :meth:`without_items`, still
    count), ``level_offsets`` the first node id of every depth 0..n_levels plus n_nodes.
    """

    vocab_sizes: list[int]
    n_items: int
    level_offsets: list[int]
    node_parent: Tensor
    node_token: Tensor
    child_start: Tensor
    child_end: Tensor
    transition_keys: Tensor
    leaf_items: Tensor

    # ------------------------------------------------------------------------------------------------
    # Construction
    # ------------------------------------------------------------------------------------------------
    @classmethod
    def from_codes(
        cls,
        codes: Tensor,
        vocab_sizes: list[int],
        item_ids: Tensor | None = None,
        n_items: int | None = None,
    ) -> PrefixTrie:
        """Build the trie of ``codes`` (n, n_levels) int64, one unique row per item.

        ``item_ids`` (n,) gives each row's catalogue index (default ``arange(n)``) and ``n_items`` the
        catalogue size (default n); both exist so a trie can hold a subset of a catalogue.
        """
        codes = torch.as_tensor(codes, dtype=torch.long)
        device = codes.device
        n_levels = len(vocab_sizes)
        if codes.dim() != 2 or codes.shape[1] != n_levels:
            raise ValueError(f"codes must be (n, {n_levels}), got {tuple(codes.shape)}")
        limits = torch.tensor(vocab_sizes, device=device)
        if bool(((codes < 0) | (codes >= limits)).any()):
            raise ValueError(f"codes fall outside the vocabularies {vocab_sizes}")
        n_rows = codes.shape[0]
        item_ids = torch.arange(n_rows, device=device) if item_ids is None else item_ids.to(device).long()
        n_items = n_rows if n_items is None else n_items

        order = torch.arange(n_rows, device=device)
        for level in reversed(range(n_levels)):  # lexicographic sort by stable sorts, last level first
            order = order[torch.sort(codes[order, level], stable=True).indices]
        sorted_codes = codes[order]

        # differs[i, d]: row i's first d+1 tokens differ from row i-1's (row 0 always starts a prefix)
        differs = torch.ones(n_rows, n_levels, dtype=torch.bool, device=device)
        differs[1:] = (sorted_codes[1:] != sorted_codes[:-1]).cummax(dim=1).values
        if n_rows and not bool(differs[:, -1].all()):
            raise ValueError("codes hold duplicate rows: every item needs a unique SID (add a dedup digit)")

        level_offsets = [0, 1]
        parents = [torch.full((1,), -1, dtype=torch.long, device=device)]
        tokens = [torch.full((1,), -1, dtype=torch.long, device=device)]
        row_node = torch.zeros(n_rows, dtype=torch.long, device=device)  # each row's node at depth d
        for depth in range(1, n_levels + 1):
            starts_prefix = differs[:, depth - 1]
            parents.append(row_node[starts_prefix])
            tokens.append(sorted_codes[starts_prefix, depth - 1])
            row_node = level_offsets[-1] + torch.cumsum(starts_prefix, 0) - 1
            level_offsets.append(level_offsets[-1] + int(starts_prefix.sum()))
        node_parent = torch.cat(parents)
        node_token = torch.cat(tokens)
        max_vocab = max(vocab_sizes)
        transition_keys = node_parent[1:] * max_vocab + node_token[1:]
        all_nodes = torch.arange(level_offsets[-1], device=device)
        child_start = torch.searchsorted(node_parent[1:], all_nodes, right=False) + 1
        child_end = torch.searchsorted(node_parent[1:], all_nodes, right=True) + 1
        return cls(
            vocab_sizes=list(vocab_sizes),
            n_items=n_items,
            level_offsets=level_offsets,
            node_parent=node_parent,
            node_token=node_token,
            child_start=child_start,
            child_end=child_end,
            transition_keys=transition_keys,
            leaf_items=item_ids[order],
        )

    def without_items(self, item_mask: Tensor) -> PrefixTrie:
        """A trie over the remaining items: ``item_mask`` bool (n_items,) marks the items to drop.

        Used by the decode-time Filter baseline; the catalogue size (``n_items``) is unchanged.
        """
        item_mask = torch.as_tensor(item_mask, dtype=torch.bool, device=self.device)
        if item_mask.shape != (self.n_items,):
            raise ValueError(f"item_mask must be ({self.n_items},), got {tuple(item_mask.shape)}")
        keep = ~item_mask[self.leaf_items]
        leaf_codes = self.prefixes_at_depth(self.n_levels)
        return PrefixTrie.from_codes(
            leaf_codes[keep], self.vocab_sizes, item_ids=self.leaf_items[keep], n_items=self.n_items
        )

    def to(self, device: torch.device | str) -> PrefixTrie:
        """A copy with every tensor on ``device``."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return PrefixTrie(
            **{name: v.to(device) if isinstance(v, Tensor) else v for name, v in values.items()}
        )

    # ------------------------------------------------------------------------------------------------
    # Shape
    # ------------------------------------------------------------------------------------------------
    @property
    def n_levels(self) -> int:
        return len(self.vocab_sizes)

    @property
    def max_vocab(self) -> int:
        return max(self.vocab_sizes)

    @property
    def n_nodes(self) -> int:
        return self.level_offsets[-1]

    @property
    def n_leaves(self) -> int:
        return self.level_offsets[-1] - self.level_offsets[-2]

    @property
    def device(self) -> torch.device:
        return self.node_parent.device

    @property
    def root(self) -> int:
        return 0

    def nodes_at_depth(self, depth: int) -> tuple[int, int]:
        """First node id and one past the last of the nodes at ``depth`` (0 = root .. n_levels = leaves)."""
        return self.level_offsets[depth], self.level_offsets[depth + 1]

    # ------------------------------------------------------------------------------------------------
    # Queries (all vectorised)
    # ------------------------------------------------------------------------------------------------
    def step(self, nodes: Tensor, tokens: Tensor) -> Tensor:
        """Child of each node along each token: nodes (N,), tokens (N,) -> (N,); -1 when absent
        (also for node -1, so dead beams stay dead)."""
        if len(self.transition_keys) == 0:
            return torch.full_like(nodes, -1)
        keys = nodes * self.max_vocab + tokens
        position = torch.searchsorted(self.transition_keys, keys).clamp_max(len(self.transition_keys) - 1)
        found = (nodes >= 0) & (tokens >= 0) & (tokens < self.max_vocab)
        found &= self.transition_keys[position] == keys
        return torch.where(found, position + 1, torch.full_like(position, -1))

    def allowed_mask(self, nodes: Tensor) -> Tensor:
        """Tokens that continue each node to a valid prefix: nodes (N,) -> bool (N, max_vocab).

        Rows of node -1 and of leaves are all False. Built once per distinct node (beams share nodes
        near the root, where nodes have the most children), then gathered.
        """
        distinct, inverse = torch.unique(nodes, return_inverse=True)
        valid = distinct >= 0
        safe = distinct.clamp_min(0)
        starts = self.child_start[safe]
        counts = torch.where(valid, self.child_end[safe] - starts, torch.zeros_like(starts))
        rows = torch.repeat_interleave(torch.arange(distinct.shape[0], device=nodes.device), counts)
        first_of_row = torch.cumsum(counts, 0) - counts
        children = starts[rows] + torch.arange(rows.shape[0], device=nodes.device) - first_of_row[rows]
        mask = torch.zeros(distinct.shape[0] * self.max_vocab, dtype=torch.bool, device=nodes.device)
        mask[rows * self.max_vocab + self.node_token[children]] = True
        return mask.view(distinct.shape[0], self.max_vocab)[inverse]

    def nodes_of_prefixes(self, prefix_tokens: Tensor) -> Tensor:
        """Node of each prefix: prefix_tokens (N, l) -> (N,); -1 where the prefix is not in the trie."""
        nodes = torch.full(
            (prefix_tokens.shape[0],), self.root, dtype=torch.long, device=prefix_tokens.device
        )
        for level in range(prefix_tokens.shape[1]):
            nodes = self.step(nodes, prefix_tokens[:, level])
        return nodes

    def leaf_item(self, nodes: Tensor) -> Tensor:
        """Catalogue item of each full-depth node: nodes (N,) -> (N,); -1 for any node that is not a leaf."""
        if self.n_leaves == 0:
            return torch.full_like(nodes, -1)
        first_leaf = self.level_offsets[-2]
        is_leaf = nodes >= first_leaf
        index = (nodes - first_leaf).clamp(0, self.n_leaves - 1)
        return torch.where(is_leaf, self.leaf_items[index], torch.full_like(nodes, -1))

    def prefixes_at_depth(self, depth: int) -> Tensor:
        """Tokens of every distinct length-``depth`` prefix, in node order: (P_depth, depth).

        Row i is the prefix of node ``level_offsets[depth] + i``.
        """
        start, stop = self.nodes_at_depth(depth)
        nodes = torch.arange(start, stop, device=self.device)
        columns = []
        for _ in range(depth):
            columns.append(self.node_token[nodes])
            nodes = self.node_parent[nodes]
        if not columns:
            return torch.zeros(stop - start, 0, dtype=torch.long, device=self.device)
        return torch.stack(columns[::-1], dim=1)
