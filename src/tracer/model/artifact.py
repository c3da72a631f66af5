"""The model artifact: the folder ``tracer train`` or an erasure method writes, and the one way to read it.

Layout: ``model.safetensors`` + ``config.json`` (:mod:`tracer.model.checkpoint`), ``sids/`` (its SID
table), optionally ``train_config.yaml``, ``train_log.json``, ``metrics.json``, ``state/`` (a training
run) or ``manifest.json`` (an erased model). :func:`load_model_artifact` validates everything it reads:
the config, the weights (finite, bound to the config), the SID table, and their agreement.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tracer.errors import UserError
from tracer.io import read_json_checked
from tracer.model.base import GenerativeRecommender
from tracer.model.checkpoint import CONFIG_FILE, WEIGHTS_FILE, load_model, read_model_config, save_model
from tracer.semantic_ids.sid_table import SidTable

SIDS_DIR = "sids"
TRAIN_CONFIG_FILE = "train_config.yaml"
TRAIN_LOG_FILE = "train_log.json"
MANIFEST_FILE = "manifest.json"


def save_model_artifact(
    folder: str | Path,
    model: GenerativeRecommender,
    sid_table: SidTable,
    config=None,
    extra: dict | None = None,
) -> None:
    """Write the model (weights + ``config.json``) and its SID table into ``folder``.

    ``config`` (a ``TrainConfig``) is recorded in ``config.json`` under ``train_config``.
    """
    extra = dict(extra or {})
    if config is not None:
        extra["train_config"] = config.to_dict()
    save_model(folder, model, extra)
    sid_table.save(Path(folder) / SIDS_DIR)


def load_model_artifact(
    folder: str | Path, device: torch.device | str = "cpu"
) -> tuple[GenerativeRecommender, SidTable, dict]:
    """-> (model in eval mode on ``device``, its SID table, the ``config.json`` dict)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"model folder {folder} not found: pass the --out folder of `tracer train`")
    for name in (WEIGHTS_FILE, CONFIG_FILE):
        if not (folder / name).is_file():
            raise UserError(
                f"{folder} is not a model folder ({name} missing): pass the --out folder of `tracer train`"
            )
    config = read_model_config(folder)
    sid_table = SidTable.load(folder / SIDS_DIR)
    model = load_model(folder, map_location=device)
    if not np.array_equal(model.codes.cpu().numpy(), sid_table.codes):
        raise UserError(f"{folder}: the model's codes differ from {folder / SIDS_DIR}: re-save the artifact")
    return model, sid_table, config


def artifact_manifest(folder: str | Path) -> dict:
    """An erased artifact's ``manifest.json`` ({} for a trained model)."""
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        return {}
    manifest = read_json_checked(path, "restore it or erase again from the parent")
    if not isinstance(manifest, dict):
        raise UserError(
            f"{path} is not a manifest (a JSON mapping): restore it or erase again from the parent"
        )
    return manifest


def check_item_alignment(sid_table: SidTable, item_ids: np.ndarray, model_name: str, data_name: str) -> None:
    """The SID table must list the dataset's items in the same order (item index = row)."""
    if len(sid_table.item_ids) != len(item_ids):
        raise UserError(
            f"{model_name} has {len(sid_table.item_ids)} items but {data_name} has {len(item_ids)}: "
            "use the dataset the SIDs/model were built from"
        )
    if not np.array_equal(sid_table.item_ids, np.asarray(item_ids).astype(str)):
        raise UserError(
            f"{model_name} lists other items (or another order) than {data_name}: "
            "use the dataset the SIDs/model were built from"
        )
