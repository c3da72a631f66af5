"""Build a generative backbone by name, from keyword arguments or a named preset.

The presets live only in ``configs/models.yaml`` (every field listed; what each is and why is written
there). Settings are checked by :func:`make_config` through the typed config loader.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor

from tracer.errors import UserError
from tracer.model.base import GenerativeRecommender
from tracer.model.causal import CausalConfig, CausalRecommender
from tracer.model.tiger import TigerConfig, TigerRecommender
from tracer.resources import config_file
from tracer.typed_config import load_config, read_yaml

BACKBONES: dict[str, type[GenerativeRecommender]] = {"tiger": TigerRecommender, "causal": CausalRecommender}
CONFIGS: dict[str, type] = {"tiger": TigerConfig, "causal": CausalConfig}
PRESETS_FILE = "models.yaml"


def _check_backbone(backbone: str) -> None:
    if backbone not in BACKBONES:
        raise UserError(f"unknown backbone {backbone!r}: choose one of {', '.join(sorted(BACKBONES))}")


def make_config(backbone: str, source: str | None = None, **config: Any) -> Any:
    """Keyword arguments -> the backbone's validated config dataclass (unknown or bad values: UserError
    naming the key and ``source``)."""
    _check_backbone(backbone)
    made = load_config(CONFIGS[backbone], config, source or f"{backbone} model settings")
    _validate(backbone, made)
    return made


def model_presets(backbone: str) -> dict[str, dict[str, Any]]:
    """The named presets of ``backbone`` in ``configs/models.yaml``: name -> every model setting."""
    _check_backbone(backbone)
    path = config_file(PRESETS_FILE)
    presets = read_yaml(path, "model presets file")
    if not isinstance(presets, dict) or not isinstance(presets.get(backbone), dict):
        raise UserError(f"{path} lacks the presets of backbone {backbone!r}: restore the file")
    return presets[backbone]


def _validate(backbone: str, config: Any) -> None:
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.name.endswith("dropout"):
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise UserError(f"{backbone} {field.name} must be in [0, 1), got {value!r}")
        elif field.name == "d_head" and value is None:
            continue
        elif field.name == "position_encoding":
            if value not in ("relative", "absolute"):
                raise UserError(
                    f"{backbone} position_encoding must be 'relative' or 'absolute', got {value!r}"
                )
        elif not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UserError(f"{backbone} setting {field.name} must be a positive integer, got {value!r}")
    if isinstance(config, TigerConfig):
        buckets, distance = config.relative_buckets, config.relative_max_distance
        if buckets < 4 or distance <= buckets // 4:
            raise UserError(
                f"tiger needs relative_buckets >= 4 and relative_max_distance > relative_buckets / 4, "
                f"got {buckets} and {distance}"
            )


def build_model(backbone: str, codes: Tensor, vocab_sizes: list[int], **config: Any) -> GenerativeRecommender:
    """A fresh backbone ``backbone`` over the SID table ``codes`` (n_items, L) with these settings."""
    made = make_config(backbone, **config)
    return BACKBONES[backbone](codes, vocab_sizes, made)


def model_from_preset(
    backbone: str, preset: str, codes: Tensor, vocab_sizes: list[int], **overrides: Any
) -> GenerativeRecommender:
    """A fresh backbone from a named preset, with some settings overridden."""
    presets = model_presets(backbone)
    if preset not in presets:
        raise UserError(f"unknown {backbone} preset {preset!r}: choose one of {', '.join(sorted(presets))}")
    made = make_config(backbone, f"{config_file(PRESETS_FILE)}: {backbone}/{preset}", **presets[preset])
    return build_model(backbone, codes, vocab_sizes, **{**dataclasses.asdict(made), **overrides})


def untrained_copy(model: GenerativeRecommender, seed: int) -> GenerativeRecommender:
    """``model``'s architecture over its current SID table, freshly initialised with torch seeded by
    ``seed``, in eval mode on ``model``'s device: the model before it learned anything. The caller's
    random stream is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = build_model(backbone_name(model), model.codes.cpu(), model.vocab_sizes, **model.config_dict())
    return fresh.to(model.codes.device).eval()


def backbone_name(model: GenerativeRecommender) -> str:
    """The registry name of a model's backbone ("tiger" or "causal")."""
    for name, model_class in BACKBONES.items():
        if type(model) is model_class:
            return name
    raise ValueError(f"{type(model).__name__} is not a registered backbone")
