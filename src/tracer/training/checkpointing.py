"""Resumable training state: model + optimiser tensors in safetensors, everything else in JSON.

Layout of ``RUN/state/``: ``epoch-NNNN.safetensors`` (keys ``model.<name>``,
``optimizer.<param index>.<name>`` and, with weight averaging, ``averaged.<name>``) and ``state.json``
(progress, optimiser hyper-parameters, the name of the tensor file). Each file is written atomically;
``state.json`` is written last and names its tensor file, so a run killed at any moment resumes from the
last complete epoch. The learning-rate schedule is a function of the global step and the RNG is reseeded
from (seed, epoch, rank) at every epoch start, so progress + tensors are the whole state. No pickle
anywhere.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from tracer.io import atomic_path, read_json, write_json

STATE_DIR = "state"
STATE_FILE = "state.json"


@dataclass
class TrainingProgress:
    """Where a run stands after ``epoch`` completed epochs.

    ``best_metric``/``best_epoch``: the best validation NDCG@10 so far and its (1-based) epoch;
    ``stale_epochs``: epochs since it last improved; ``log``: one dict per completed epoch.
    """

    epoch: int = 0
    global_step: int = 0
    best_metric: float | None = None
    best_epoch: int | None = None
    stale_epochs: int = 0
    finished: bool = False
    log: list[dict] = field(default_factory=list)


def _module_tensors(module: nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    # clone: safetensors refuses tensors that share storage (tied weights)
    return {
        f"{prefix}.{name}": t.detach().cpu().clone().contiguous() for name, t in module.state_dict().items()
    }


def _load_module(module: nn.Module, tensors: dict[str, torch.Tensor], prefix: str) -> None:
    device = next(module.parameters()).device
    start = len(prefix) + 1
    module.load_state_dict(
        {name[start:]: t.to(device) for name, t in tensors.items() if name[:start] == f"{prefix}."}
    )


def _optimizer_parts(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split ``optimizer.state_dict()`` into tensors and a JSON-able rest."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for index, slots in state["state"].items():
        for name, value in slots.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{name}"] = value.detach().cpu().clone().contiguous()
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def save_training_state(
    run_dir: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    progress: TrainingProgress,
    averaged: nn.Module | None = None,
) -> None:
    """Write the state after ``progress.epoch`` epochs, then drop older tensor files.

    ``averaged``: the moving average of the weights (``torch.optim.swa_utils.AveragedModel``), if any."""
    folder = Path(run_dir) / STATE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    tensor_name = f"epoch-{progress.epoch:04d}.safetensors"
    optimizer_tensors, optimizer_rest = _optimizer_parts(optimizer)
    with atomic_path(folder / tensor_name) as tmp:
        averaged_tensors = _module_tensors(averaged, "averaged") if averaged is not None else {}
        save_file({**_module_tensors(model, "model"), **optimizer_tensors, **averaged_tensors}, str(tmp))
    write_json(
        folder / STATE_FILE,
        {"tensors": tensor_name, "progress": asdict(progress), "optimizer": optimizer_rest},
    )
    for old in folder.glob("epoch-*.safetensors"):
        if old.name != tensor_name:
            old.unlink()


def has_training_state(run_dir: str | Path) -> bool:
    return (Path(run_dir) / STATE_DIR / STATE_FILE).is_file()


def load_training_state(
    run_dir: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    averaged: nn.Module | None = None,
) -> TrainingProgress:
    """Restore model, optimiser and weight average in place from ``RUN/state/``; return the progress."""
    folder = Path(run_dir) / STATE_DIR
    meta = read_json(folder / STATE_FILE)
    tensors = load_file(str(folder / meta["tensors"]))
    _load_module(model, tensors, "model")
    if averaged is not None:
        _load_module(averaged, tensors, "averaged")
    slots: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, slot = name.split(".", 2)
            slots.setdefault(int(index), {})[slot] = value
    for index, rest in meta["optimizer"]["scalars"].items():
        slots.setdefault(int(index), {}).update(rest)
    groups = [  # JSON turned tuples (betas) into lists
        {
            key: tuple(value) if isinstance(value, list) and key != "params" else value
            for key, value in group.items()
        }
        for group in meta["optimizer"]["param_groups"]
    ]
    optimizer.load_state_dict({"state": slots, "param_groups": groups})
    return TrainingProgress(**meta["progress"])
