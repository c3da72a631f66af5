"""Representation misdirection (RMU, docs/method.md §5): steer one block's hidden states on forget
inputs towards a fixed random direction, keep them at the frozen model's on retain inputs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from tracer.errors import UserError
from tracer.model.layers import TransformerBlock
from tracer.unlearning.base import EraseConfig, UnlearningMethod
from tracer.unlearning.objectives import Examples, level_log_probs


@dataclass
class RMUConfig(EraseConfig):
    """``layer``: index among the model's transformer blocks in module order (-1 = the middle one).
    ``steering_scale``: c = steering_scale x the mean hidden-state norm of the frozen model there.
    ``alpha``: weight of the retain term."""

    layer: int
    steering_scale: float
    alpha: float


def transformer_blocks(model: nn.Module) -> list[nn.Module]:
    return [module for module in model.modules() if isinstance(module, TransformerBlock)]


@contextmanager
def capture_block_output(block: nn.Module) -> Iterator[list[Tensor]]:
    """Collects the block's output hidden states (B', S, d) during the forward passes in the block."""
    captured: list[Tensor] = []

    def hook(_module, _inputs, output):
        captured.append(output[0] if isinstance(output, tuple) else output)

    handle = block.register_forward_hook(hook)
    try:
        yield captured
    finally:
        handle.remove()


def block_hidden(model: nn.Module, block: nn.Module, batch: Examples) -> Tensor:
    """The chosen block's hidden states over a teacher-forced pass, flattened to (N, d)."""
    with capture_block_output(block) as captured:
        level_log_probs(model, batch)
    return torch.cat([h.reshape(-1, h.shape[-1]) for h in captured])


class RMU(UnlearningMethod):
    name = "rmu"
    config_class = RMUConfig
    needs_reference = True

    def setup(self, model):
        blocks = transformer_blocks(model)
        if not blocks:
            raise UserError("rmu needs a transformer backbone (tiger or causal)")
        if self.config.forget_windows > 0:
            raise UserError("rmu steers the hidden states of forget examples: set forget_windows to 0")
        index = len(blocks) // 2 if self.config.layer == -1 else self.config.layer
        if not -len(blocks) <= index < len(blocks):
            raise UserError(f"rmu layer {self.config.layer} out of range: the model has {len(blocks)} blocks")
        self.block = blocks[index]
        self.reference_block = transformer_blocks(self.context.reference)[index]
        generator = torch.Generator().manual_seed(self.config.seed)
        direction = torch.rand(model.d_model, generator=generator)
        self.direction = (direction / direction.norm()).to(self.context.device)
        self.coefficient: float | None = None

    def loss(self, model, batch):
        with torch.no_grad():
            retain_reference = block_hidden(self.context.reference, self.reference_block, batch.retain)
            if self.coefficient is None:
                forget_reference = block_hidden(self.context.reference, self.reference_block, batch.forget)
                self.coefficient = self.config.steering_scale * float(forget_reference.norm(dim=-1).mean())
        forget_hidden = block_hidden(model, self.block, batch.forget)
        retain_hidden = block_hidden(model, self.block, batch.retain)
        target = self.coefficient * self.direction
        forget = (forget_hidden - target).pow(2).sum(-1).mean()
        retain = (retain_hidden - retain_reference).pow(2).sum(-1).mean()
        return forget + self.config.alpha * retain, {
            "rmu_forget": forget.detach(),
            "rmu_retain": retain.detach(),
        }
