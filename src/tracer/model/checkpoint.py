"""Save and load a generative backbone: ``model.safetensors`` + ``config.json`` in one folder.

The weights file holds the whole state dict, the SID table buffer ``codes`` included, so a loaded model
scores with the SID table it was trained (or erased) with. ``config.json`` holds what rebuilds the
model: ``{"backbone", "vocab_sizes", "n_items", "model": <config dataclass>, **extra}``. Weights are read
with safetensors only (never pickle); every write is atomic (temporary file + rename).

The weights are bound to their config: the safetensors metadata holds ``config_sha256``, the hash of
the architecture part of ``config.json`` (``backbone``, ``vocab_sizes``, ``n_items``, ``model``), so a
loaded model is refused when that part was edited (say ``n_heads``, which changes no tensor shape).
Models saved before the binding carry no hash; they load as before (the strict state-dict load still
checks every shape), so existing artifacts stay usable. Loading also refuses non-finite weights.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from tracer.errors import UserError
from tracer.io import atomic_path, write_json
from tracer.model.base import GenerativeRecommender
from tracer.model.registry import backbone_name, build_model

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
_RESERVED_KEYS = ("backbone", "vocab_sizes", "n_items", "model")
HASH_KEY = "config_sha256"


def save_model(folder: str | Path, model: GenerativeRecommender, extra: dict | None = None) -> None:
    """Write ``folder/model.safetensors`` and ``folder/config.json`` (``extra`` keys join the config)."""
    extra = dict(extra or {})
    clashing = sorted(set(extra) & set(_RESERVED_KEYS))
    if clashing:
        raise ValueError(f"extra keys {clashing} clash with the checkpoint's own keys")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {name: value.detach().cpu().contiguous() for name, value in model.state_dict().items()}
    architecture = {
        "backbone": backbone_name(model),
        "vocab_sizes": list(model.vocab_sizes),
        "n_items": model.n_items,
        "model": model.config_dict(),
    }
    with atomic_path(folder / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp), metadata={HASH_KEY: architecture_sha256(architecture)})
    write_json(folder / CONFIG_FILE, {**architecture, **extra})


def architecture_sha256(config: dict[str, Any]) -> str:
    """Hash of the keys of ``config.json`` that rebuild the model (what the weights are bound to)."""
    architecture = {key: config[key] for key in _RESERVED_KEYS}
    return hashlib.sha256(json.dumps(architecture, sort_keys=True).encode()).hexdigest()


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
        state = load_file(str(weights))
        with safe_open(str(weights), framework="pt") as handle:
            bound = (handle.metadata() or {}).get(HASH_KEY)
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise UserError(f"{weights} is unreadable ({error}): re-save or re-train the model") from error
    if bound is not None and bound != architecture_sha256(config):
        raise UserError(
            f"{folder / CONFIG_FILE} was edited: its backbone, vocab_sizes, n_items or model settings are "
            f"not those {weights} was saved with; restore the original config.json"
        )
    if "codes" not in state:
        raise UserError(f"{weights} holds no SID table ('codes'): re-save or re-train the model")
    broken = non_finite_tensors(state)
    if broken:
        raise UserError(
            f"{weights} holds NaN or infinite values (in {broken[0]}): use a healthy model "
            "(re-train, or erase again from the parent)"
        )
    model = build_model(config["backbone"], state["codes"], config["vocab_sizes"], **config["model"])
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first_line = str(error).splitlines()[0]
        raise UserError(
            f"{weights} does not match {folder / CONFIG_FILE} ({first_line}): re-save the model"
        ) from error
    return model.to(map_location).eval()


def non_finite_tensors(state: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors that hold a NaN or an infinity (one device sync in all)."""
    names = [name for name, value in state.items() if value.is_floating_point()]
    if not names:
        return []
    finite = torch.stack([state[name].isfinite().all() for name in names]).cpu()
    return [name for name, ok in zip(names, finite.tolist()) if not ok]


def check_finite(model: torch.nn.Module, message: str) -> None:
    """UserError(``message``) when a weight of ``model`` is NaN or infinite (checked before any write)."""
    if non_finite_tensors(model.state_dict()):
        raise UserError(message)


def state_dict_sha256(model: torch.nn.Module) -> str:
    """SHA-256 of every state-dict tensor (name, dtype, shape and bytes, in name order)."""
    digest = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
