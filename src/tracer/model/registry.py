"""Build a generative backbone by name, from keyword arguments or a named preset.

Presets (values and where they come from):

- ``tiger/paper``: the TIGER anchor of docs/method.md §1.3 (Rajput et al. 2023: 4+4 layers, d_model 128,
  6 heads x 64, d_ff 1024, dropout 0.1, histories of at most 20 items); as in T5, dropout also acts
  on the attention probabilities.
- ``tiger/small``: a CPU-sized encoder-decoder (2+2 layers, d 128, 4 heads, d_ff 256, 50 items), with
  two CPU choices: no attention-probability dropout (on CPU it makes attention about 20x slower) and
  "absolute" item-recency positions instead of T5's relative bias (whose gradient makes encoder
  attention about 7x slower).
- ``causal/base``: 4 layers, d 256, 8 heads, d_ff 1024, 50 items (GPU-sized).
- ``causal/small``: the CPU default (2 layers, d 128, 4 heads, d_ff 512, 50 items).
- ``*/tiny``: a few thousand parameters, for tests and demos.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import Tensor

from tracer.errors import UserError
from tracer.model.base import GenerativeRecommender
from tracer.model.causal import CausalConfig, CausalRecommender
from tracer.model.tiger import TigerConfig, TigerRecommender

BACKBONES: dict[str, type[GenerativeRecommender]] = {"tiger": TigerRecommender, "causal": CausalRecommender}
CONFIGS: dict[str, type] = {"tiger": TigerConfig, "causal": CausalConfig}

PRESETS: dict[str, dict[str, Any]] = {
    "tiger": {
        "paper": TigerConfig(),
        "small": TigerConfig(
            max_history=50,
            n_encoder_layers=2,
            n_decoder_layers=2,
            n_heads=4,
            d_head=None,
            d_ff=256,
            attention_dropout=0.0,
            position_encoding="absolute",
        ),
        "tiny": TigerConfig(
            max_history=8,
            n_encoder_layers=2,
            n_decoder_layers=2,
            d_model=32,
            n_heads=2,
            d_head=None,
            d_ff=64,
            attention_dropout=0.0,
            position_encoding="absolute",
        ),
    },
    "causal": {
        "base": CausalConfig(max_history=50, n_layers=4, d_model=256, n_heads=8, d_ff=1024),
        "small": CausalConfig(max_history=50, n_layers=2, d_model=128, n_heads=4, d_ff=512),
        "tiny": CausalConfig(max_history=8, n_layers=2, d_model=32, n_heads=2, d_ff=64),
    },
}


def _check_backbone(backbone: str) -> None:
    if backbone not in BACKBONES:
        raise UserError(f"unknown backbone {backbone!r}: choose one of {', '.join(sorted(BACKBONES))}")


def make_config(backbone: str, **config: Any) -> Any:
    """Keyword arguments -> the backbone's validated config dataclass (unknown or bad values: UserError)."""
    _check_backbone(backbone)
    config_class = CONFIGS[backbone]
    fields = {field.name for field in dataclasses.fields(config_class)}
    unknown = sorted(set(config) - fields)
    if unknown:
        valid = ", ".join(sorted(fields))
        raise UserError(f"unknown {backbone} model setting(s) {', '.join(unknown)}: valid ones are {valid}")
    made = config_class(**config)
    _validate(backbone, made)
    return made


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
    _check_backbone(backbone)
    presets = PRESETS[backbone]
    if preset not in presets:
        raise UserError(f"unknown {backbone} preset {preset!r}: choose one of {', '.join(sorted(presets))}")
    return build_model(backbone, codes, vocab_sizes, **{**dataclasses.asdict(presets[preset]), **overrides})


def backbone_name(model: GenerativeRecommender) -> str:
    """The registry name of a model's backbone ("tiger" or "causal")."""
    for name, model_class in BACKBONES.items():
        if type(model) is model_class:
            return name
    raise ValueError(f"{type(model).__name__} is not a registered backbone")
