"""Filter: remove the concept's items from the decoding trie (docs/method.md §5). No training:
exposure drops to zero, the model's concept mass does not move. Not erasure; a baseline."""

from __future__ import annotations

from tracer.unlearning.base import UnlearningMethod


class DecodeFilter(UnlearningMethod):
    name = "filter"
    trains = False

    def finish(self, model, sid_table):
        excluded = sid_table.item_ids[self.context.concept.item_indices].tolist()
        return sid_table, {"decode_exclude_item_ids": excluded}
