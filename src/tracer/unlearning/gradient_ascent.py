"""Gradient ascent on the forget set (GA) and gradient difference (GradDiff, docs/method.md §5)."""

from __future__ import annotations

from dataclasses import dataclass

from tracer.errors import UserError
from tracer.unlearning.base import EraseConfig, UnlearningMethod
from tracer.unlearning.objectives import kl_to_reference, nll


class GradientAscent(UnlearningMethod):
    """GA: minimise -NLL on D_f (no retain term)."""

    name = "ga"

    def loss(self, model, batch):
        forget = nll(model, batch.forget)
        return -forget, {"forget_nll": forget.detach()}


@dataclass
class GradDiffConfig(EraseConfig):
    """``gamma`` weighs the forget ascent, ``alpha`` the retain term; ``retain_loss``: ``nll`` or ``kl``
    (KL from the original model's token distributions on retain examples)."""

    gamma: float
    alpha: float
    retain_loss: str


class GradDiff(UnlearningMethod):
    name = "graddiff"
    config_class = GradDiffConfig
    needs_reference = True

    def setup(self, model):
        if self.config.retain_loss not in ("nll", "kl"):
            raise UserError(f"graddiff retain_loss must be 'nll' or 'kl', got {self.config.retain_loss!r}")

    def loss(self, model, batch):
        forget = nll(model, batch.forget)
        if self.config.retain_loss == "kl":
            retain = kl_to_reference(model, self.context.reference, batch.retain)
        else:
            retain = nll(model, batch.retain)
        total = -self.config.gamma * forget + self.config.alpha * retain
        return total, {
            "forget_nll": forget.detach(),
            f"retain_{self.config.retain_loss}": retain.detach(),
        }
