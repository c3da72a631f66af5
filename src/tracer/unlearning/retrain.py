"""Retrain, the gold standard (docs/method.md §3): the same model trained from scratch, with the same
training config and seed as the parent, on the retain targets D_r only; ``train_seed`` draws another
training run of it.

With ``rebuild_sids`` and SIDs built from interactions (``tracer sids --encoder cf`` or ``cf-seq``), the
SIDs are retrained too: the parent's SID build runs again, with the same settings, on the training
sequences from which every forget target has been taken out, and the model is trained on that new table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tracer.errors import UserError
from tracer.io import read_json, write_json
from tracer.model.artifact import load_model_artifact
from tracer.semantic_ids.build import (
    INTERACTION_ENCODERS,
    STATS_FILE,
    SidsConfig,
    build_sids,
    recorded_config,
)
from tracer.semantic_ids.sid_table import SidTable
from tracer.training.config import TrainConfig
from tracer.training.loop import METRICS_FILE, train
from tracer.typed_config import setting
from tracer.unlearning.base import EraseConfig, UnlearningMethod


@dataclass
class RetrainConfig(EraseConfig):
    """``rebuild_sids``: rebuild SIDs that were learned from interactions (encoders ``cf``, ``cf-seq``)
    without the forget targets before training, so that no part of the pipeline saw them. Text SIDs do
    not depend on interactions, so the parent's table already is the retrained one: it is kept, and the
    manifest's summary says so (``sids_rebuilt: false`` and the reason) rather than failing. SIDs of
    precomputed vectors (``tracer sids --vectors``) cannot be rebuilt here: a UserError.

    ``train_seed`` (None: the parent's) is the training seed. One Retrain is one draw of a random
    training run; another seed gives another draw of the same reference, to measure how much it moves.
    The shared ``seed`` (``--seed``) seeds nothing here."""

    rebuild_sids: bool
    train_seed: int | None = setting(ge=0)


SCHEDULE_KEYS = ("epochs", "best_epoch", "stopped_early")


def schedule_warning(retrain: dict, parent: dict | None) -> str | None:
    """A warning when Retrain's early stop ended its training before the epoch at which its parent
    peaked: such a reference is weaker than its parent by schedule, not by the concept, and every share
    against it is inflated. ``retrain`` and ``parent``: ``{"epochs", "best_epoch", "stopped_early"}`` of
    the two training runs (``parent`` None when the parent has no record)."""
    if parent is None or not retrain["stopped_early"] or retrain["epochs"] >= parent["best_epoch"]:
        return None
    return (
        f"Retrain stopped early at epoch {retrain['epochs']} (best epoch {retrain['best_epoch']}), before "
        f"its parent's best epoch {parent['best_epoch']}: it may be a weak reference that flatters every "
        "method compared with it; train the parent with a larger patience, so that its Retrain inherits it"
    )


class Retrain(UnlearningMethod):
    name = "retrain"
    config_class = RetrainConfig
    trains = False

    def setup(self, model):
        raw = self.context.model_config.get("train_config")
        if raw is None:
            raise UserError(
                "retrain needs the parent's training config (config.json 'train_config'): "
                "erase from a model written by `tracer train`"
            )
        device = str(self.context.device)
        config = TrainConfig.from_dict(raw).replace(device=device, seed=self.config.train_seed)
        self.train_seed = config.seed
        sids, self.sids_summary = self._sids_to_rebuild()
        self.sids_dir = self.context.sids_dir if sids is None else self._rebuild(sids)
        run = self.context.scratch / "run"
        trained = train(
            config,
            self.context.data_dir,
            self.sids_dir,
            run,
            target_mask=~self.context.targets.forget_targets,
        )
        self.retrained, _, _ = load_model_artifact(run, self.context.device)
        self.schedule = {key: trained[key] for key in SCHEDULE_KEYS}
        parent = self._parent_schedule()
        self.schedule_warning = schedule_warning(self.schedule, parent)

    def _sids_to_rebuild(self) -> tuple[SidsConfig | None, dict]:
        """The parent's SID build settings when its SIDs must be rebuilt, else None and why not."""
        if not self.config.rebuild_sids:
            return None, {"sids_rebuilt": False, "sids_reason": "rebuild_sids is false"}
        sids = recorded_config(self.context.sids_dir)
        if sids.vectors is not None:
            raise UserError(
                f"the parent's SIDs were built from precomputed vectors ({sids.vectors}), which retrain "
                "cannot rebuild without the forget targets: erase with --set rebuild_sids=false"
            )
        if sids.encoder not in INTERACTION_ENCODERS:
            reason = (
                f"text SIDs (encoder {sids.encoder}) do not depend on interactions: the parent's table "
                "already is the retrained one"
            )
            return None, {"sids_rebuilt": False, "sids_reason": reason}
        return sids, {"sids_rebuilt": True, "interactions_dropped": self.context.targets.n_forget}

    def _rebuild(self, sids: SidsConfig) -> Path:
        """Run the parent's SID build again on the training sequences without the forget targets;
        returns the new SID folder (in the erasure's scratch folder)."""
        context = self.context
        kept = context.sequences.without_targets(context.targets.forget_targets)
        folder = context.scratch / "sids"
        build_sids(context.data_dir, folder, sids, progress=False, sequences=kept)
        stats = read_json(folder / STATS_FILE)  # say which interactions these SIDs never saw
        stats["without_forget_targets"] = {
            "concept": context.concept.name,
            "interactions_dropped": context.targets.n_forget,
        }
        write_json(folder / STATS_FILE, stats)
        return folder

    def _parent_schedule(self) -> dict | None:
        """The parent's own early-stop record (its ``metrics.json``), or None when it has none."""
        parent_dir = self.context.parent_dir
        if parent_dir is None or not (parent_dir / METRICS_FILE).is_file():
            return None
        recorded = read_json(parent_dir / METRICS_FILE)
        return {key: recorded[key] for key in SCHEDULE_KEYS} if set(SCHEDULE_KEYS) <= set(recorded) else None

    def final_model(self, model):
        return self.retrained

    def finish(self, model, sid_table):
        summary = {**self.sids_summary, "training": self.schedule, "train_seed": self.train_seed}
        if self.schedule_warning is not None:
            summary["warning"] = self.schedule_warning
        if not self.sids_summary["sids_rebuilt"]:
            return sid_table, summary
        table = SidTable.load(self.sids_dir)
        moved = int((table.codes != sid_table.codes).any(1).sum())
        return table, {**summary, "items_with_new_sids": moved}

    def tokenizer_dir(self) -> Path:
        return self.sids_dir
