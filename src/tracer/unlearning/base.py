"""One interface for every erasure method; :mod:`tracer.unlearning.methods` maps names to methods.

A method is a small class that overrides :meth:`UnlearningMethod.loss` over a ``{forget, retain}``
batch (the open-unlearning pattern); its hyperparameters are a dataclass without defaults: they live
only in ``configs/unlearning/<name>.yaml`` (:func:`method_settings`). Methods that need more than one
joint backward per step (TRACER) override :meth:`UnlearningMethod.step`.
"""

from __future__ import annotations

import dataclasses
from abc import ABC
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from tracer.data.concepts import Concept, ConceptTargets
from tracer.data.sequences import SequenceData
from tracer.errors import UserError
from tracer.model.base import GenerativeRecommender
from tracer.resources import config_file
from tracer.semantic_ids.sid_table import SidTable
from tracer.typed_config import load_config, read_yaml, setting
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

    steps: int = setting(ge=1)
    lr: float = setting(gt=0)
    weight_decay: float = setting(ge=0)
    batch_size: int = setting(ge=1)
    retain_windows: int = setting(ge=1)
    forget_windows: int = setting(ge=0)
    grad_clip: float = setting(gt=0, infinite=True)  # .inf: no clipping
    max_history: int = setting(ge=1)
    dropout: bool
    seed: int = setting(ge=0)


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
    scratch: Path  # a folder the method may write to; removed when the erasure ends
    parent_dir: Path | None = None  # the parent's folder (its metrics.json says how its training went)


class UnlearningMethod(ABC):
    """Base class: ``loss`` over a {forget, retain} batch; ``step`` does one optimiser update."""

    name: ClassVar[str]
    config_class: ClassVar[type[EraseConfig]] = EraseConfig
    needs_reference: ClassVar[bool] = False
    trains: ClassVar[bool] = True

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

    def loss(self, model: GenerativeRecommender, batch: ForgetRetainBatch) -> tuple[Tensor, dict[str, Any]]:
        """Scalar loss to minimise and the named terms to log, as detached tensors (or floats): the
        runner reads them on the host only every few steps (every training method overrides it)."""
        raise NotImplementedError(f"{self.name} does not train")

    def step(
        self, model: GenerativeRecommender, batch: ForgetRetainBatch, optimizer: torch.optim.Optimizer
    ) -> dict[str, Any]:
        optimizer.zero_grad(set_to_none=True)
        loss, logs = self.loss(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.parameters(model), self.config.grad_clip)
        optimizer.step()
        return {"loss": loss.detach(), **logs}

    def final_model(self, model: GenerativeRecommender) -> GenerativeRecommender:
        """After the last step, before :meth:`finish`: the model the artifact gets. ``model`` itself,
        updated in place, unless the method built another (Retrain on rebuilt SIDs: its vocabulary
        follows the table it trained on)."""
        return model

    def finish(self, model: GenerativeRecommender, sid_table: SidTable) -> tuple[SidTable, dict]:
        """After the last step: the artifact's SID table and a summary for the manifest."""
        return sid_table, {}

    def tokenizer_dir(self) -> Path:
        """The SID folder whose tokenizer state (codebooks, residuals, item vectors, build stats) the
        artifact carries: the parent's, unless the method rebuilt the SIDs."""
        return self.context.sids_dir


def method_settings(name: str, config_class: type[EraseConfig], _seen: tuple[str, ...] = ()) -> dict:
    """The settings of method ``name``: ``configs/unlearning/<name>.yaml`` on top of the file it names
    as ``base`` (``erase`` for the shared settings; ``tracer`` for TRACER's ablations), recursively.
    Unknown keys are refused naming the file."""
    path = config_file("unlearning", f"{name}.yaml")
    raw = read_yaml(path, f"config file of method {name!r}")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UserError(f"{path} must be a mapping of setting: value")
    raw = dict(raw)
    base = raw.pop("base", None)
    known = [f.name for f in dataclasses.fields(config_class)]
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise UserError(f"{path}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(known)}")
    if base in (*_seen, name):
        raise UserError(f"{path}: base {base!r} makes a loop ({' -> '.join((*_seen, name, base))})")
    settings = method_settings(base, config_class, (*_seen, name)) if base else {}
    return {**settings, **raw}


def build_config(cls: type[UnlearningMethod], values: dict, source: str | None = None) -> EraseConfig:
    """The method's config: its YAML settings (:func:`method_settings`, the one source of its defaults)
    overridden by ``values``; unknown keys, types and ranges are UserErrors naming the key and
    ``source`` (:func:`tracer.typed_config.load_config`)."""
    source = source or f"settings of method {cls.name!r}"
    if not isinstance(values, dict):
        raise UserError(f"{source} must be a mapping of setting: value, got {type(values).__name__}")
    return load_config(cls.config_class, {**method_settings(cls.name, cls.config_class), **values}, source)
