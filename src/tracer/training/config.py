"""Training configuration: one typed dataclass, loaded from a preset YAML in ``configs/``.

A preset file has three sections::

    backbone: causal            # or tiger
    model:                      # a model preset of tracer.model.registry + overrides of its fields
      preset: small
      dropout: 0.1
    train:                      # the fields of TrainConfig below (all optional)
      batch_size: 128
      lr: 0.002

``--preset`` takes the name of a file in ``configs/`` (without ``.yaml``) or a path to a YAML file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tracer.errors import UserError
from tracer.io import atomic_path
from tracer.resources import config_dir
from tracer.typed_config import check_ranges, load_config, read_yaml, setting

BACKBONES = ("causal", "tiger")
SECTIONS = ("backbone", "model", "train")


@dataclass
class TrainConfig:
    """Everything that decides a training run (with the data and SIDs it reads).

    ``batch_size`` counts rows per optimiser step over all processes: (history, target) examples for
    ``target`` backbones, sequence windows of ``max_history + 1`` items for ``sequence`` backbones.
    The learning rate warms up linearly over ``warmup_steps`` then follows a cosine down to
    ``lr * min_lr_ratio`` at the end of ``max_epochs``. Validation NDCG@10 is computed every epoch on
    all validation users (``eval_users: null``) or a fixed seeded sample of that many; training stops
    after ``patience`` epochs without improvement and keeps the best epoch's weights.
    ``max_history`` (null: the model preset's) sets the model's history length, which is also the
    training window. ``rows_per_epoch`` (null: all) makes an epoch a fresh seeded draw of that many rows
    (examples or windows), for backbones too costly to see every target each epoch.
    ``ema_decay`` (null: off) keeps an exponential moving average of the weights, updated after every
    optimiser step (``ema = decay * ema + (1 - decay) * weights``); validation, the best checkpoint and
    the final metrics then use the averaged weights.
    ``device``: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
    The GPU fast path (both off by default; the losses equal the default path's within float rounding):
    ``fused_loss`` computes each step's loss by one logsumexp over the padded (levels x vocabulary)
    logits of every window position or target, masked, instead of a log-softmax read at the scored
    positions: fixed shapes and no host-device sync in a step. ``compile`` runs the loss (forward and
    backward) through ``torch.compile``; with ``fused_loss`` it is one graph. Compiled dropout draws its
    masks from the compiler's random stream: as seeded and resumable, but another draw than eager's.
    """

    backbone: str = "causal"
    model_preset: str = "small"
    model_overrides: dict = field(default_factory=dict)
    seed: int = setting(0, ge=0)
    batch_size: int = setting(128, ge=1)
    lr: float = setting(2e-3, gt=0)
    min_lr_ratio: float = setting(0.05, ge=0, le=1)
    weight_decay: float = setting(0.01, ge=0)
    beta1: float = setting(0.9, ge=0, lt=1)
    beta2: float = setting(0.98, ge=0, lt=1)
    warmup_steps: int = setting(100, ge=0)
    grad_clip: float = setting(1.0, ge=0)
    max_epochs: int = setting(50, ge=1)
    patience: int = setting(3, ge=1)
    max_history: int | None = setting(None, ge=1)
    rows_per_epoch: int | None = setting(None, ge=1)
    eval_users: int | None = setting(None, ge=1)
    eval_beam_width: int = setting(20, ge=10)  # validation ranks the top 10
    eval_batch_size: int = setting(256, ge=1)
    ema_decay: float | None = setting(None, gt=0, lt=1)
    fused_loss: bool = False
    compile: bool = False
    device: str = "auto"

    def validate(self, source: str = "train config") -> None:
        if self.backbone not in BACKBONES:
            raise UserError(f"unknown backbone {self.backbone!r}: choose one of {', '.join(BACKBONES)}")
        check_ranges(self, source)

    def to_dict(self) -> dict:
        """The preset-file form (three sections)."""
        train = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in _MODEL_FIELDS
        }
        return {
            "backbone": self.backbone,
            "model": {"preset": self.model_preset, **self.model_overrides},
            "train": train,
        }

    @classmethod
    def from_dict(cls, raw: dict, source: str = "config") -> TrainConfig:
        if not isinstance(raw, dict):
            raise UserError(f"{source} must be a mapping with sections {', '.join(SECTIONS)}")
        unknown = sorted(set(raw) - set(SECTIONS))
        if unknown:
            raise UserError(
                f"{source}: unknown section(s) {', '.join(unknown)}; allowed: {', '.join(SECTIONS)}"
            )
        model = dict(raw.get("model") or {})
        train = dict(raw.get("train") or {})
        allowed = [f.name for f in dataclasses.fields(cls) if f.name not in _MODEL_FIELDS]
        bad = sorted(set(train) - set(allowed))
        if bad:
            raise UserError(f"{source}: unknown train key(s) {', '.join(bad)}; allowed: {', '.join(allowed)}")
        config = load_config(
            cls,
            {
                "backbone": str(raw.get("backbone", cls.backbone)),
                "model_preset": str(model.pop("preset", cls.model_preset)),
                "model_overrides": model,
                **train,
            },
            f"{source}: train",
        )
        config.validate(source)
        return config

    def replace(self, **changes) -> TrainConfig:
        """A copy with some fields changed (``None`` values are ignored), validated."""
        updated = dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})
        updated.validate()
        return updated

    def differences(self, other: TrainConfig) -> list[str]:
        """``section.key`` names whose values differ from ``other``'s; ``device`` is not compared (where a
        run happens does not change what it trains)."""
        mine, theirs = self.to_dict(), other.to_dict()
        changed = [] if mine["backbone"] == theirs["backbone"] else ["backbone"]
        for section in ("model", "train"):
            keys = sorted(set(mine[section]) | set(theirs[section]))
            changed += [f"{section}.{k}" for k in keys if mine[section].get(k) != theirs[section].get(k)]
        return [name for name in changed if name != "train.device"]

    def save(self, path: str | Path) -> None:
        with atomic_path(path) as tmp:
            tmp.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        return cls.from_dict(read_yaml(path, "preset file"), source=str(path))


_MODEL_FIELDS = ("backbone", "model_preset", "model_overrides")


def preset_folders() -> list[Path]:
    """Where named presets live: the package's ``configs/`` (shipped with it, found through it)."""
    return [config_dir()]


def preset_names() -> list[str]:
    """Names of the training presets (YAML files in ``configs/`` with a ``backbone`` key)."""
    names = set()
    for folder in preset_folders():
        for path in folder.glob("*.yaml"):
            try:
                raw = yaml.safe_load(path.read_text())
            except yaml.YAMLError:
                continue
            if isinstance(raw, dict) and "backbone" in raw:
                names.add(path.stem)
    return sorted(names)


def load_preset(name_or_path: str | Path) -> TrainConfig:
    """A preset by name (``configs/<name>.yaml``) or by path to a YAML file; UserError listing choices."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        if not candidate.is_file():
            raise UserError(
                f"preset file {candidate} not found: give an existing YAML or one of {preset_names()}"
            )
        return TrainConfig.load(candidate)
    for folder in preset_folders():
        path = folder / f"{name_or_path}.yaml"
        if path.is_file():
            return TrainConfig.load(path)
    raise UserError(
        f"unknown preset {str(name_or_path)!r}: choose one of {', '.join(preset_names())} or a YAML path"
    )
