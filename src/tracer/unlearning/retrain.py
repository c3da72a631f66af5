"""Retrain, the gold standard (docs/method.md §3): the same model trained from scratch, with the same
training config and seed as the parent, on the retain targets D_r only."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tracer.errors import UserError
from tracer.unlearning.base import UnlearningMethod


class Retrain(UnlearningMethod):
    name = "retrain"
    trains = False

    def setup(self, model):
        from tracer.model.artifact import load_model_artifact
        from tracer.training.config import TrainConfig
        from tracer.training.loop import train

        raw = self.context.model_config.get("train_config")
        if raw is None:
            raise UserError(
                "retrain needs the parent's training config (config.json 'train_config'): "
                "erase from a model written by `tracer train`"
            )
        config = TrainConfig.from_dict(raw).replace(device=str(self.context.device))  # the parent's seed too
        with tempfile.TemporaryDirectory(prefix="tracer-retrain-") as scratch:
            run = Path(scratch) / "run"
            train(
                config,
                self.context.data_dir,
                self.context.sids_dir,
                run,
                target_mask=~self.context.targets.forget_targets,
            )
            retrained, _, _ = load_model_artifact(run, self.context.device)
        model.load_state_dict(retrained.state_dict())
