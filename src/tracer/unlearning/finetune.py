"""Finetune: keep training on the retain set D_r only (no forget term)."""

from __future__ import annotations

from tracer.unlearning.base import UnlearningMethod, register_method
from tracer.unlearning.objectives import nll


@register_method
class Finetune(UnlearningMethod):
    name = "finetune"

    def loss(self, model, batch):
        retain = nll(model, batch.retain)
        return retain, {"retain_nll": float(retain.detach())}
