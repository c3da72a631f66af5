"""A training run stopped after one epoch and resumed, against the same run uninterrupted."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from tracer.io import read_json
from tracer.training.config import TrainConfig
from tracer.training.loop import train


def assert_resume_is_bit_identical(
    config: TrainConfig, inputs: tuple[Path, Path], root: Path
) -> tuple[dict, dict]:
    """Train ``config`` for 3 epochs in ``root/whole``, and in ``root/split`` as 1 epoch then a resume;
    assert equal final training states and per-epoch losses. -> (whole, resumed) results of ``train``."""
    whole = train(config, *inputs, root / "whole", show_progress=False)
    first = train(config, *inputs, root / "split", stop_after_epochs=1, show_progress=False)
    assert (first["epochs"], first["finished"]) == (1, False)
    resumed = train(config, *inputs, root / "split", resume=True, show_progress=False)
    assert resumed["epochs"] == whole["epochs"] == 3
    final_whole = load_file(str(root / "whole" / "state" / "epoch-0003.safetensors"))
    final_split = load_file(str(root / "split" / "state" / "epoch-0003.safetensors"))
    assert final_whole.keys() == final_split.keys()
    assert all(torch.equal(final_whole[name], final_split[name]) for name in final_whole)
    losses = [
        [entry["loss"] for entry in read_json(run / "train_log.json")]
        for run in (root / "whole", root / "split")
    ]
    assert losses[0] == losses[1]
    assert resumed["final_weights_sha256"] == whole["final_weights_sha256"] != first["final_weights_sha256"]
    return whole, resumed
