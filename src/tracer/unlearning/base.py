"""One interface for every erasure method; :mod:`tracer.unlearning.methods` maps names to methods.

A method is a small class that overrides :meth:`UnlearningMethod.loss` over a ``{forget, retain}``
batch (the open-unlearning pattern); its hyperparameters are a dataclass whose defaults live in
``configs/unlearning/<name>.yaml``. Methods that need more than one joint backward per step (TRACER)
override :meth:`UnlearningMethod.step`.
"""

from __future__ import annotations

from abc import ABC
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from torch import Tensor

from tracer.data.concepts import Concept, ConceptTargets
from tracer.data.sequences import SequenceData
from tracer.model.base import GenerativeRecommender
from tracer.semantic_ids.sid_table import SidTable
from tracer.typed_config import load_config, setting
from tracer.unlearning.batches import ForgetRetainBatch


@dataclass
class EraseConfig:
    """Settings every training-based method shares. ``batch_size``: forget examples per step (and
    retain examples for target backbones). Sequence backbones (causal) draw windows of
    ``max_history + 1`` items instead, scoring every target of the set in a window in one pass:
    ``retain_windows`` per step for the retain term, and ``forget_windows`` for the forget term when
    it is > 0 (0: ``batch_size`` single forget examples). ``dropout``: whether the model's dropout is
    active during the erasure steps (False runs them in eval mode, so that a KL to the frozen parent is
    exactly 0 at the parent's weights)."""

    steps: int = setting(200, ge=1)
    lr: float = setting(1e-4, gt=0)
    weight_decay: float = setting(0.0, ge=0)
    batch_size: int = setting(64, ge=1)
    retain_windows: int = setting(8, ge=1)
    forget_windows: int = setting(0, ge=0)
    grad_clip: float = setting(1.0, gt=0)
    max_history: int = setting(50, ge=1)
    dropout: bool = True
    seed: int = setting(0, ge=0)


@dataclass
class ErasureContext:
    """What a method may look at: the data, the concept and its forget/retain sets, the frozen parent."""

    data_dir: Path
    model_config: dict  # the parent's config.json (its train_config rebuilds the training run)
    sequences: SequenceData
    concept: Concept
    targets: ConceptTargets
    sid_table: SidTable
    sids_dir: Path  # the parent's SID folder: table + tokenizer state (codebooks, residuals, item vectors)
    reference: GenerativeRecommender | None
    device: torch.device


class UnlearningMethod(ABC):
    """Base class: ``loss`` over a {forget, retain} batch; ``step`` does one optimiser update."""

    name: ClassVar[str]
    config_class: ClassVar[type[EraseConfig]] = EraseConfig
    needs_reference: ClassVar[bool] = False
    trains: ClassVar[bool] = True
    ablates: ClassVar[str | None] = None  # an ablation reads this method's config file first

    def __init__(self, config: EraseConfig, context: ErasureContext) -> None:
        self.config = config
        self.context = context

    @classmethod
    def wants_reference(cls, config: EraseConfig) -> bool:
        """Whether this run needs a frozen copy of the parent (``context.reference``)."""
        return cls.needs_reference

    def setup(self, model: GenerativeRecommender) -> None:
        """Called once before the first step (hooks, extra parameters, ...); nothing by default."""
        return None

    def parameters(self, model: GenerativeRecommender) -> list[torch.nn.Parameter]:
        """The parameters the optimiser updates (theta by default)."""
        return [p for p in model.parameters() if p.requires_grad]

    def loss(self, model: GenerativeRecommender, batch: ForgetRetainBatch) -> tuple[Tensor, dict[str, float]]:
        """Scalar loss to minimise and the named terms to log (every training method overrides it)."""
        raise NotImplementedError(f"{self.name} does not train")

    def step(
        self, model: GenerativeRecommender, batch: ForgetRetainBatch, optimizer: torch.optim.Optimizer
    ) -> dict[str, float]:
        optimizer.zero_grad(set_to_none=True)
        loss, logs = self.loss(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.parameters(model), self.config.grad_clip)
        optimizer.step()
        return {"loss": float(loss.detach()), **logs}

    def finish(self, model: GenerativeRecommender, sid_table: SidTable) -> tuple[SidTable, dict]:
        """After the last step: the artifact's SID table and a summary for the manifest."""
        return sid_table, {}


def build_config(cls: type[UnlearningMethod], values: dict, source: str | None = None) -> EraseConfig:
    """The method's config from a dict (:func:`tracer.typed_config.load_config`: unknown keys, types and
    ranges are UserErrors naming the key and ``source``)."""
    return load_config(cls.config_class, values, source or f"settings of method {cls.name!r}")
