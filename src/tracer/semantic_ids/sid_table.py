"""The SID table: item -> L codebook tokens + one dedup digit (docs/method.md §1.2).

Items whose L codes collide get a dedup digit 0, 1, 2, ... in item-index order within their group, so
every item has a unique tuple of L + 1 tokens. The dedup vocabulary is sized with headroom for TRACER's
commit step, which moves items into other groups:

    dedup_capacity = max(4, 2 * (max_dedup + 1))

so a group may grow to twice the largest group seen at tokenisation before :meth:`SidTable.reassign`
refuses. Files: ``sids.parquet`` (``item_id``, ``c1``..``cL``, ``dedup``) and ``sid_table.json``
(``levels``, ``codebook_size``, ``dedup_capacity``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tracer.errors import UserError
from tracer.io import read_json_checked, read_table, write_json, write_parquet

SIDS_FILE = "sids.parquet"
TABLE_FILE = "sid_table.json"


def prefix_group_ids(codes: np.ndarray) -> np.ndarray:
    """Dense ids of every prefix: codes (n, m) -> int64 (n, m), column j numbering the distinct prefixes
    ``codes[:, :j + 1]`` in lexicographic order. Codes are small non-negative tokens; one 1-D
    ``np.unique`` per column (much faster than ``np.unique(axis=0)`` on a million rows)."""
    codes = np.asarray(codes, dtype=np.int64)
    n, m = codes.shape
    groups = np.empty((n, m), dtype=np.int64)
    current = np.zeros(n, dtype=np.int64)
    for column in range(m):
        values = codes[:, column]
        span = int(values.max()) + 1 if n else 1
        _, current = np.unique(current * span + values, return_inverse=True)
        groups[:, column] = current.reshape(-1)
    return groups


def dedup_digits(level_codes: np.ndarray) -> np.ndarray:
    """Rank of each item inside its group of identical rows, in item-index order: (n, L) -> int64 (n,)."""
    if len(level_codes) == 0:
        return np.zeros(0, dtype=np.int64)
    group = prefix_group_ids(level_codes)[:, -1]
    order = np.argsort(group, kind="stable")
    sorted_group = group[order]
    first = np.r_[True, sorted_group[1:] != sorted_group[:-1]]
    starts = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
    digits = np.empty(len(order), dtype=np.int64)
    digits[order] = np.arange(len(order)) - starts
    return digits


def default_dedup_capacity(max_dedup: int) -> int:
    return max(4, 2 * (int(max_dedup) + 1))


class SidTable:
    """Semantic IDs of a catalogue.

    ``item_ids``: str (n,), in ``items.parquet`` row order (row = item index). ``codes``: int64
    (n, L + 1), the last column the dedup digit. Every row is unique.
    """

    def __init__(self, item_ids, codes: np.ndarray, codebook_size: int, dedup_capacity: int) -> None:
        self.item_ids = np.asarray(item_ids).astype(str)
        self.codes = np.ascontiguousarray(codes, dtype=np.int64)
        self.codebook_size = int(codebook_size)
        self.dedup_capacity = int(dedup_capacity)
        self._index: dict[str, int] | None = None
        self._validate()

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_level_codes(cls, item_ids, level_codes: np.ndarray, codebook_size: int) -> SidTable:
        """Append dedup digits to the (n, L) codebook codes of a tokenizer."""
        level_codes = np.asarray(level_codes, dtype=np.int64)
        digits = dedup_digits(level_codes)
        max_dedup = int(digits.max()) if len(digits) else 0
        codes = np.concatenate([level_codes, digits[:, None]], axis=1)
        return cls(item_ids, codes, codebook_size, default_dedup_capacity(max_dedup))

    def _validate(self) -> None:
        n = len(self.item_ids)
        if self.codes.ndim != 2 or self.codes.shape[0] != n or self.codes.shape[1] < 2:
            raise ValueError(f"codes must be (n_items={n}, L+1 >= 2), got {self.codes.shape}")
        if not pd.Index(self.item_ids).is_unique:
            raise ValueError("item ids must be unique")
        level_codes, digits = self.codes[:, :-1], self.codes[:, -1]
        if n and (level_codes.min() < 0 or level_codes.max() >= self.codebook_size):
            raise ValueError(f"codebook codes must lie in [0, {self.codebook_size})")
        if n and (digits.min() < 0 or digits.max() >= self.dedup_capacity):
            raise ValueError(f"dedup digits must lie in [0, {self.dedup_capacity})")
        if n and prefix_group_ids(self.codes)[:, -1].max() + 1 != n:
            raise ValueError("two items share a semantic ID")

    # -- shape ----------------------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def levels(self) -> int:
        """L, the number of codebook levels (the dedup digit excluded)."""
        return self.codes.shape[1] - 1

    @property
    def level_codes(self) -> np.ndarray:
        """int64 (n, L): the codebook tokens without the dedup digit."""
        return self.codes[:, :-1]

    @property
    def vocab_sizes(self) -> list[int]:
        """Vocabulary size of every token position: [K] * L + [dedup_capacity]."""
        return [self.codebook_size] * self.levels + [self.dedup_capacity]

    def __len__(self) -> int:
        return self.n_items

    # -- lookups --------------------------------------------------------------------------------
    def index_of(self, item_id: str) -> int:
        """Item index of an item id (KeyError if unknown)."""
        if self._index is None:
            self._index = {item: index for index, item in enumerate(self.item_ids.tolist())}
        return self._index[str(item_id)]

    def codes_of(self, item_index: int) -> np.ndarray:
        """int64 (L + 1,) tokens of one item."""
        return self.codes[item_index].copy()

    def item_index_of_codes(self, codes: np.ndarray) -> np.ndarray:
        """Item index of every row of ``codes`` (m, L + 1) -> int64 (m,), -1 where no item has it."""
        codes = np.asarray(codes, dtype=np.int64).reshape(-1, self.codes.shape[1])
        valid = ((codes >= 0) & (codes < np.array(self.vocab_sizes))).all(axis=1)
        group = prefix_group_ids(np.concatenate([self.codes, np.where(valid[:, None], codes, 0)]))[:, -1]
        owner = np.full(len(group), -1, dtype=np.int64)
        owner[group[: self.n_items]] = np.arange(self.n_items)
        return np.where(valid, owner[group[self.n_items :]], -1)

    # -- TRACER commit --------------------------------------------------------------------------
    def reassign(self, item_indices, new_level_codes: np.ndarray) -> SidTable:
        """A new table where ``item_indices`` (m,) take ``new_level_codes`` (m, L).

        A moved item gets the smallest dedup digit not used in its new group (items handled in the
        given order); an item whose codes do not change keeps its row. Every other row is unchanged.
        Raises ValueError if a group would need a digit >= ``dedup_capacity``.
        """
        new_level_codes = np.asarray(new_level_codes, dtype=np.int64)
        table, chosen = self.place(item_indices, new_level_codes.reshape(-1, 1, self.levels))
        if (chosen < 0).any():
            item = np.asarray(item_indices).reshape(-1)[np.flatnonzero(chosen < 0)[0]]
            raise ValueError(f"item {item} needs a dedup digit beyond dedup_capacity {self.dedup_capacity}")
        return table

    def place(self, item_indices, candidates: np.ndarray) -> tuple[SidTable, np.ndarray]:
        """Move ``item_indices`` (m,) each to the first of its ``candidates`` (m, C, L), in order of
        preference, whose group still has a free dedup digit below ``dedup_capacity``; it takes the
        smallest free digit (items handled in the given order). An item whose first candidate is its
        own codes keeps its row. Every other row is unchanged.

        Returns (new table, the chosen candidate per item; -1 where no candidate had room, for which
        the item stays on its own codes with the smallest free digit of its group, or ValueError when
        even that group is full)."""
        item_indices = np.asarray(item_indices, dtype=np.int64).reshape(-1)
        candidates = np.asarray(candidates, dtype=np.int64).reshape(len(item_indices), -1, self.levels)
        if len(np.unique(item_indices)) != len(item_indices):
            raise ValueError("item_indices must not repeat")
        if len(item_indices) and (item_indices.min() < 0 or item_indices.max() >= self.n_items):
            raise ValueError(f"item indices must lie in [0, {self.n_items})")
        if len(item_indices) and (candidates.min() < 0 or candidates.max() >= self.codebook_size):
            raise ValueError(f"new codes must lie in [0, {self.codebook_size})")
        changed = (candidates[:, 0] != self.level_codes[item_indices]).any(axis=1)
        moved, options = item_indices[changed], candidates[changed]
        n_options = options.shape[1]
        flat = np.concatenate([self.level_codes, options.reshape(-1, self.levels)])
        group = prefix_group_ids(flat)[:, -1]
        item_group, option_group = group[: self.n_items], group[self.n_items :].reshape(-1, n_options)
        stays = np.ones(self.n_items, dtype=bool)
        stays[moved] = False
        used: dict[int, set[int]] = {}
        for g, digit in zip(item_group[stays].tolist(), self.codes[stays, -1].tolist(), strict=True):
            used.setdefault(g, set()).add(digit)
        codes = self.codes.copy()
        chosen = np.zeros(len(item_indices), dtype=np.int64)
        moved_rows = np.flatnonzero(changed)
        for row, item in enumerate(moved.tolist()):
            groups = [*option_group[row].tolist(), int(item_group[item])]  # last resort: its own codes
            tokens = [*options[row], self.level_codes[item]]
            for choice, (g, level_codes) in enumerate(zip(groups, tokens, strict=True)):
                taken = used.setdefault(g, set())
                digit = next(d for d in range(len(taken) + 1) if d not in taken)
                if digit < self.dedup_capacity:
                    taken.add(digit)
                    codes[item, :-1], codes[item, -1] = level_codes, digit
                    chosen[moved_rows[row]] = choice if choice < n_options else -1
                    break
            else:
                raise ValueError(
                    f"item {item} needs a dedup digit beyond dedup_capacity {self.dedup_capacity}"
                )
        return SidTable(self.item_ids, codes, self.codebook_size, self.dedup_capacity), chosen

    # -- persistence ----------------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame({"item_id": self.item_ids})
        for level in range(self.levels):
            frame[f"c{level + 1}"] = self.codes[:, level]
        frame["dedup"] = self.codes[:, -1]
        return frame

    def save(self, folder: str | Path) -> None:
        """Write ``folder/sids.parquet`` and ``folder/sid_table.json``."""
        folder = Path(folder)
        write_parquet(folder / SIDS_FILE, self.to_frame())
        meta = {
            "levels": self.levels,
            "codebook_size": self.codebook_size,
            "dedup_capacity": self.dedup_capacity,
        }
        write_json(folder / TABLE_FILE, meta)

    @classmethod
    def load(cls, folder: str | Path) -> SidTable:
        folder = Path(folder)
        if not (folder / SIDS_FILE).is_file() or not (folder / TABLE_FILE).is_file():
            raise UserError(
                f"{folder} holds no SID table ({SIDS_FILE}, {TABLE_FILE}): run `tracer sids` first"
            )
        fix = "rebuild it with `tracer sids`"
        meta = read_json_checked(folder / TABLE_FILE, fix)
        keys = ("levels", "codebook_size", "dedup_capacity")
        if not isinstance(meta, dict) or not all(isinstance(meta.get(key), int) for key in keys):
            raise UserError(f"{folder / TABLE_FILE} lacks whole numbers {', '.join(keys)}: {fix}")
        columns = [f"c{level + 1}" for level in range(meta["levels"])] + ["dedup"]
        kinds = {"item_id": "string", **dict.fromkeys(columns, "integer")}
        frame = read_table(folder / SIDS_FILE, kinds, fix)
        codes = frame[columns].to_numpy(dtype=np.int64)
        try:
            return cls(frame["item_id"].to_numpy(), codes, meta["codebook_size"], meta["dedup_capacity"])
        except ValueError as error:  # duplicate items or SIDs, codes out of range
            raise UserError(f"{folder / SIDS_FILE} is inconsistent ({error}): {fix}") from None

    def trie(self):
        """The prefix trie of all SIDs (for constrained decoding)."""
        import torch

        from tracer.semantic_ids.trie import PrefixTrie

        return PrefixTrie.from_codes(torch.as_tensor(self.codes), self.vocab_sizes)
