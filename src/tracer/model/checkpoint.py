"""Save and load a generative backbone: ``model.safetensors`` + ``config.json`` in one folder.

The weights file holds the whole state dict, the SID table buffer ``codes`` included, so a loaded model
scores with the SID table it was trained (or erased) with. ``config.json`` holds what rebuilds the
model: ``{"backbone", "vocab_sizes", "n_items", "model": <config dataclass>, **extra}``. Weights are read
with safetensors only (never pickle); every write is atomic (temporary file + rename).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from tracer.errors import UserError
from tracer.io import atomic_path, write_json
from tracer.model.base import GenerativeRecommender
from tracer.model.registry import backbone_name, build_model

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
_RESERVED_KEYS = ("backbone", "vocab_sizes", "n_items", "model")


def save_model(folder: str | Path, model: GenerativeRecommender, extra: dict | None = None) -> None:
    """Write ``folder/model.safetensors`` and ``folder/config.json`` (``extra`` keys join the config)."""
    extra = dict(extra or {})
    clashing = sorted(set(extra) & set(_RESERVED_KEYS))
    if clashing:
        raise ValueError(f"extra keys {clashing} clash with the checkpoint's own keys")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {name: value.detach().cpu().contiguous() for name, value in model.state_dict().items()}
    with atomic_path(folder / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp))
    config = {
        "backbone": backbone_name(model),
        "vocab_sizes": list(model.vocab_sizes),
        "n_items": model.n_items,
        "model": model.config_dict(),
        **extra,
    }
    write_json(folder / CONFIG_FILE, config)


def read_model_config(folder: str | Path) -> dict[str, Any]:
    """The ``config.json`` of a saved model (UserError if the folder holds no readable one)."""
    folder = Path(folder)
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise UserError(f"{folder} holds no saved model ({CONFIG_FILE} missing): pass a model folder")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path} is not valid JSON ({error}): re-save or re-train the model") from error
    missing = [key for key in _RESERVED_KEYS if not isinstance(config, dict) or key not in config]
    if missing:
        raise UserError(f"{path} lacks {', '.join(missing)}: re-save or re-train the model")
    return config


def load_model(folder: str | Path, map_location: str | torch.device = "cpu") -> GenerativeRecommender:
    """Rebuild the model saved in ``folder`` (in eval mode) on ``map_location``."""
    folder = Path(folder)
    config = read_model_config(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise UserError(f"{folder} holds no {WEIGHTS_FILE}: pass a complete model folder")
    try:
        state = load_file(str(weights), device=str(map_location))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise UserError(f"{weights} is unreadable ({error}): re-save or re-train the model") from error
    if "codes" not in state:
        raise UserError(f"{weights} holds no SID table ('codes'): re-save or re-train the model")
    model = build_model(config["backbone"], state["codes"], config["vocab_sizes"], **config["model"])
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first_line = str(error).splitlines()[0]
        raise UserError(
            f"{weights} does not match {folder / CONFIG_FILE} ({first_line}): re-save the model"
        ) from error
    return model.to(map_location).eval()


def state_dict_sha256(model: torch.nn.Module) -> str:
    """SHA-256 of every state-dict tensor (name, dtype, shape and bytes, in name order)."""
    digest = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
