"""One interface for every erasure method; :mod:`tracer.unlearning.methods` maps names to methods.

A method is a small class that overrides :meth:`UnlearningMethod.loss` over a ``{forget, retain}``
batch (the open-unlearning pattern); its hyperparameters are a dataclass whose defaults live in
``configs/unlearning/<name>.yaml``. Methods that need more than one joint backward per step (TRACER)
override :meth:`UnlearningMethod.step`.
"""

from __future__ import annotations

import dataclasses
from abc import ABC
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from torch import Tensor

from tracer.data.concepts import Concept, ConceptTargets
from tracer.data.sequences import SequenceData
from tracer.errors import UserError
from tracer.model.base import GenerativeRecommender
from tracer.semantic_ids.sid_table import SidTable
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

    steps: int = 200
    lr: float = 1e-4
    weight_decay: float = 0.0
    batch_size: int = 64
    retain_windows: int = 8
    forget_windows: int = 0
    grad_clip: float = 1.0
    max_history: int = 50
    dropout: bool = True
    seed: int = 0


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


def build_config(cls: type[UnlearningMethod], values: dict) -> EraseConfig:
    """The method's config from a dict, with a clear error for unknown keys or bad types."""
    known = {f.name: f for f in dataclasses.fields(cls.config_class)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise UserError(
            f"unknown setting(s) {unknown} for method {cls.name!r}: valid keys are {sorted(known)}"
        )
    typed = {}
    for key, value in values.items():
        default = known[key].default
        if isinstance(default, bool):
            typed[key] = bool(value)
        elif isinstance(default, (int, float)):
            number = _number(value, key, cls.name)  # YAML reads 1e-4 (no dot) as a string
            if isinstance(default, int) and not float(number).is_integer():
                raise UserError(f"setting {key!r} of {cls.name!r} must be a whole number, got {value!r}")
            typed[key] = int(number) if isinstance(default, int) else float(number)
        else:
            typed[key] = value
    return cls.config_class(**typed)


def _number(value, key: str, method: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UserError(f"setting {key!r} of {method!r} must be a number, got {value!r}") from None
