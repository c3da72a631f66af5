"""Finetune: keep training on the retain set D_r only (no forget term)."""

from __future__ import annotations

from tracer.unlearning.base import UnlearningMethod
from tracer.unlearning.objectives import nll


class Finetune(UnlearningMethod):
    name = "finetune"

    def loss(self, model, batch):
        retain = nll(model, batch.retain)
        return retain, {"retain_nll": retain.detach()}
