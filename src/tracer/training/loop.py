"""The training loop (docs/method.md §1.3): next-SID NLL, AdamW, warmup + cosine, early stopping.

One call of :func:`train` runs single-process or under ``torchrun`` (DDP, see ``distributed.py``):

- loss: NLL of each target's full SID (sum over levels of the per-level cross-entropy), averaged over
  the targets of the step (over all processes);
- AdamW with weight decay on matrices only, linear warmup then cosine decay, gradient clipping;
- optionally (``ema_decay``) an exponential moving average of the weights, which is what gets
  validated, kept and evaluated;
- validation NDCG@10 by trie-constrained beam search after every epoch; the best epoch's weights are
  kept in ``out_dir`` and training stops after ``patience`` epochs without improvement;
- the state is saved atomically after every epoch (``checkpointing.py``) and ``resume=True`` continues a
  killed run to bit-identical final weights on CPU;
- at the end the best model is evaluated on valid and test users (``metrics.json``);
- ``fused_loss`` and ``compile`` (:class:`TrainConfig`): the GPU fast path, off by default, with the
  same losses within float rounding.
Run folder: ``model.safetensors`` + ``config.json`` (best weights), ``sids/``, ``train_config.yaml``,
``train_log.json``, ``metrics.json``, ``state/``.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from tracer.data.artifact import load_dataset
from tracer.data.sequences import SequenceData, build_sequences
from tracer.distributed import (
    DistContext,
    all_reduce_sum,
    barrier,
    broadcast_flag,
    init_distributed,
    shard,
    shutdown,
    wrap_ddp,
)
from tracer.errors import UserError
from tracer.evaluation.evaluate import rank_histories
from tracer.evaluation.metrics import DEFAULT_KS, ndcg_at_k, recall_at_k, summarize_ranking
from tracer.io import atomic_path, write_json
from tracer.model.artifact import (
    TRAIN_CONFIG_FILE,
    TRAIN_LOG_FILE,
    check_item_alignment,
    load_model_artifact,
    save_model_artifact,
)
from tracer.model.base import GenerativeRecommender
from tracer.model.checkpoint import state_dict_sha256
from tracer.model.registry import model_from_preset
from tracer.outputs import check_apart, check_writable, hold_claim, written_by_tracer
from tracer.semantic_ids.build import STATS_FILE, VECTORS_FILE
from tracer.semantic_ids.quantization import TOKENIZER_FILE
from tracer.semantic_ids.sid_table import SidTable
from tracer.training.batches import Batch, TrainingExamples
from tracer.training.checkpointing import (
    TrainingProgress,
    has_training_state,
    load_training_state,
    save_training_state,
)
from tracer.training.config import TrainConfig

METRICS_FILE = "metrics.json"
VALID_K = 10
PROGRESS_EVERY = 5  # steps between progress-bar updates


class SummedNLL(nn.Module):
    """The module DDP wraps: forward(batch) -> summed SID NLL of the batch's targets (bf16 on CUDA);
    ``fused``: by the fused cross-entropy (``TrainConfig.fused_loss``)."""

    def __init__(self, model: GenerativeRecommender, fused: bool = False) -> None:
        super().__init__()
        self.model = model
        self.fused = fused

    def forward(self, batch: Batch) -> Tensor:
        on_cuda = self.model.codes.device.type == "cuda"
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if on_cuda else contextlib.nullcontext()
        with autocast:
            nll = batch.fused_nll(self.model) if self.fused else batch.target_nll(self.model)
            return nll.sum()


def loss_module_for(model: GenerativeRecommender, config: TrainConfig, context: DistContext) -> nn.Module:
    """The module a step calls: :class:`SummedNLL` of the config's loss, in DDP under several processes,
    compiled with ``config.compile``."""
    module = wrap_ddp(SummedNLL(model, config.fused_loss), context)
    return torch.compile(module) if config.compile else module


def learning_rate(config: TrainConfig, step: int, total_steps: int) -> float:
    """Linear warmup over ``warmup_steps``, then a cosine from ``lr`` down to ``lr * min_lr_ratio``
    at ``total_steps``."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps))
    floor = config.min_lr_ratio
    return config.lr * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW (fused kernel); weight decay on matrices (dim >= 2) only, never on biases, norms, vectors."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2), fused=True)


def weight_average(model: GenerativeRecommender, config: TrainConfig) -> AveragedModel | None:
    """The moving average of ``model``'s weights that ``ema_decay`` asks for (None: off). Buffers (the
    SID codes) are copied, not averaged; ``update_parameters`` after each step, the first one copies."""
    if config.ema_decay is None:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay)).eval()


def build_model(config: TrainConfig, sid_table: SidTable) -> GenerativeRecommender:
    """A fresh backbone from the config's model preset (seeded by ``config.seed``)."""
    overrides = dict(config.model_overrides)
    if config.max_history is not None:
        overrides["max_history"] = config.max_history
    torch.manual_seed(config.seed)
    return model_from_preset(
        config.backbone,
        config.model_preset,
        torch.as_tensor(sid_table.codes),
        sid_table.vocab_sizes,
        **overrides,
    )


def model_max_history(model: GenerativeRecommender) -> int:
    return int(model.config_dict()["max_history"])


def _reseed(seed: int, epoch: int, rank: int) -> None:
    """Dropout RNG of an epoch, a function of (seed, epoch, rank) only, so resume replays it."""
    torch.manual_seed(int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0]))


def validation_users(data: SequenceData, config: TrainConfig) -> np.ndarray:
    """All users, or a fixed seeded sample of ``eval_users`` of them (sorted)."""
    if config.eval_users is None or config.eval_users >= data.n_users:
        return np.arange(data.n_users)
    rng = np.random.default_rng(config.seed)
    return np.sort(rng.choice(data.n_users, size=config.eval_users, replace=False))


def validate(
    model: GenerativeRecommender, trie, data: SequenceData, users: np.ndarray, config: TrainConfig, context
) -> dict:
    """Validation Recall@10 / NDCG@10 of ``users``, each rank decoding its shard, summed over ranks."""
    mine = shard(users, context)
    histories = data.histories("valid")
    ranked, _ = rank_histories(
        model, trie, [histories[u] for u in mine], VALID_K, config.eval_beam_width,
        config.eval_batch_size, model_max_history(model), context.device,
    )  # fmt: skip
    targets = data.valid_targets[mine]
    sums = all_reduce_sum(
        [ndcg_at_k(ranked, targets, VALID_K).sum(), recall_at_k(ranked, targets, VALID_K).sum(), len(mine)],
        context,
    )
    return {f"valid_ndcg@{VALID_K}": sums[0] / sums[2], f"valid_recall@{VALID_K}": sums[1] / sums[2]}


def _prepare_out_dir(
    out_dir: Path,
    config: TrainConfig,
    sid_table: SidTable,
    resume: bool,
    overwrite: bool,
    inputs: dict,
    claims: contextlib.ExitStack,
) -> None:
    """Claim, then refuse, clear or reuse ``out_dir`` (rank 0 only); never an input, inside one or
    around one; --overwrite clears only a folder this tool wrote (:func:`tracer.outputs.written_by_tracer`);
    the claim (:func:`tracer.outputs.hold_claim`) lasts as long as ``claims``: one writer at a time."""
    check_apart(out_dir, inputs)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} is a file: give a folder")
    check_writable(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    claims.enter_context(hold_claim(out_dir))
    if resume and has_training_state(out_dir):
        changed = TrainConfig.load(out_dir / TRAIN_CONFIG_FILE).differences(config)
        if changed:
            raise UserError(
                f"{out_dir} was trained with another config ({', '.join(changed)} differ from "
                f"{out_dir / TRAIN_CONFIG_FILE}): resume with the same preset or choose a new --out"
            )
        return
    if out_dir.exists() and any(out_dir.iterdir()):
        killed_before_first_epoch = resume and (out_dir / TRAIN_CONFIG_FILE).is_file()
        if not (overwrite or killed_before_first_epoch):
            raise UserError(
                f"output folder {out_dir} already exists: pass --resume, --overwrite or another --out"
            )
        if not written_by_tracer(out_dir):
            raise UserError(
                f"--overwrite replaces only a folder written by tracer, and {out_dir} is not one: "
                "choose another --out"
            )
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config.save(out_dir / TRAIN_CONFIG_FILE)
    sid_table.save(out_dir / "sids")


def copy_tokenizer_state(sids_dir: Path, out_dir: Path) -> None:
    """Carry the tokenizer state (codebooks, residuals, item vectors) and the SID build's ``stats.json``
    (its settings) into the run's ``sids/`` so that erasure methods that need them (TRACER; Retrain
    rebuilding collaborative SIDs) can start from the model folder alone."""
    for name in (TOKENIZER_FILE, VECTORS_FILE, STATS_FILE):
        if (sids_dir / name).is_file():
            with atomic_path(out_dir / "sids" / name) as tmp:
                shutil.copyfile(sids_dir / name, tmp)


def _train_epoch(
    loss_module: nn.Module,
    model: GenerativeRecommender,
    optimizer: torch.optim.Optimizer,
    averaged: AveragedModel | None,
    examples: TrainingExamples,
    config: TrainConfig,
    progress: TrainingProgress,
    total_steps: int,
    context: DistContext,
    show_progress: bool,
) -> dict:
    """One epoch of optimiser steps; -> mean loss per target and throughput (over all ranks).

    ``loss_module`` wraps ``model`` (maybe in DDP); ``averaged`` (if any) follows ``model`` after each step.
    """
    loss_module.train()
    steps = examples.epoch_steps(
        config.batch_size, config.seed, progress.epoch, context.rank, context.world_size
    )
    bar = tqdm(
        steps,
        total=examples.steps_per_epoch(config.batch_size, context.world_size),
        desc=f"epoch {progress.epoch + 1}/{config.max_epochs}",
        disable=not (show_progress and context.is_main),
        leave=False,
    )
    loss_sum = torch.zeros((), device=context.device)  # kept on the device: no sync per step
    targets_done, start = 0, time.perf_counter()
    for index, step in enumerate(bar):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, progress.global_step, total_steps)
        batch = step.batch.to(context.device)
        nll_sum = loss_module(batch)
        loss = nll_sum * (context.world_size / step.global_targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            nn.utils.clip_grad_norm_(loss_module.parameters(), config.grad_clip)
        optimizer.step()
        if averaged is not None:
            averaged.update_parameters(model)
        progress.global_step += 1
        loss_sum += nll_sum.detach().float()
        targets_done += step.global_targets
        if index % PROGRESS_EVERY == 0 and not bar.disable:
            rate = targets_done / max(time.perf_counter() - start, 1e-9)
            shown = float(loss_sum) * context.world_size / targets_done  # this rank's mean, as an estimate
            bar.set_postfix(loss=f"{shown:.3f}", targets_s=f"{rate:,.0f}")
    seconds = time.perf_counter() - start
    total_loss = all_reduce_sum([float(loss_sum)], context)[0]  # the epoch's one sync of the loss
    if not math.isfinite(total_loss):
        raise UserError(
            f"training diverged in epoch {progress.epoch + 1} (loss {total_loss}): that epoch was not saved; "
            "lower train.lr (or check the data)"
        )
    return {
        "loss": total_loss / max(targets_done, 1),
        "targets": targets_done,
        "train_seconds": seconds,
        "targets_per_second": targets_done / max(seconds, 1e-9),
        "lr": optimizer.param_groups[0]["lr"],
    }


def _final_metrics(model, trie, data: SequenceData, config: TrainConfig, context: DistContext) -> dict:
    """Valid and test metrics of the (best) model on all users, ranked by beam search."""
    k_max = max(DEFAULT_KS)
    out = {}
    for split in ("valid", "test"):
        ranked, _ = rank_histories(
            model, trie, data.histories(split), k_max, max(config.eval_beam_width, k_max),
            config.eval_batch_size, model_max_history(model), context.device, context=context,
        )  # fmt: skip
        out[split] = summarize_ranking(ranked, data.targets(split), DEFAULT_KS)
    return out


def train(
    config: TrainConfig,
    data_dir: str | Path,
    sids_dir: str | Path,
    out_dir: str | Path,
    resume: bool = False,
    backbone: str | None = None,
    overwrite: bool = False,
    stop_after_epochs: int | None = None,
    show_progress: bool = True,
    target_mask: np.ndarray | None = None,
) -> dict:
    """Train a backbone on a prepared dataset with a SID table; write the run folder (module docstring).

    ``stop_after_epochs`` ends this call (resumably) after that many epochs, e.g. for time-boxed jobs;
    the schedule still spans ``config.max_epochs``. ``target_mask`` (bool, aligned with
    ``SequenceData.training_targets()``) keeps only some training targets (Retrain trains on D_r);
    histories keep every item. Returns a summary (epochs, best epoch, metrics).
    """
    config = config.replace(backbone=backbone)
    context = init_distributed(config.device)
    try:
        with contextlib.ExitStack() as claims:
            return _train(config, Path(data_dir), Path(sids_dir), Path(out_dir), resume, overwrite,
                          stop_after_epochs, show_progress, context, target_mask, claims)  # fmt: skip
    finally:
        shutdown(context)


def _train(
    config: TrainConfig,
    data_dir: Path,
    sids_dir: Path,
    out_dir: Path,
    resume: bool,
    overwrite: bool,
    stop_after_epochs: int | None,
    show_progress: bool,
    context: DistContext,
    target_mask: np.ndarray | None,
    claims: contextlib.ExitStack,
) -> dict:
    dataset = load_dataset(data_dir)
    data = build_sequences(dataset)
    sid_table = SidTable.load(sids_dir)
    check_item_alignment(sid_table, data.item_ids, str(sids_dir), str(data_dir))
    refusal = None
    if context.is_main:
        try:
            inputs = {"dataset": data_dir, "SID table": sids_dir}
            _prepare_out_dir(out_dir, config, sid_table, resume, overwrite, inputs, claims)
            copy_tokenizer_state(sids_dir, out_dir)
        except UserError as error:
            refusal = error
    if not broadcast_flag(refusal is None, context):  # the other ranks must not wait for rank 0 forever
        raise refusal or UserError(f"rank 0 could not prepare {out_dir}: see its error message")
    resuming = has_training_state(out_dir) and resume

    model = build_model(config, sid_table).to(context.device)
    optimizer = make_optimizer(model, config)
    averaged = weight_average(model, config)
    progress = load_training_state(out_dir, model, optimizer, averaged) if resuming else TrainingProgress()
    evaluated = model if averaged is None else averaged.module  # the weights that are validated and kept
    loss_module = loss_module_for(model, config, context)
    examples = TrainingExamples(
        data, model.batch_kind, model_max_history(model), target_mask, config.rows_per_epoch
    )
    total_steps = config.max_epochs * examples.steps_per_epoch(config.batch_size, context.world_size)
    trie = sid_table.trie()
    valid_users = validation_users(data, config)
    run_start, epochs_this_call = time.perf_counter(), 0

    while not progress.finished:
        _reseed(config.seed, progress.epoch, context.rank)
        entry = {"epoch": progress.epoch + 1}
        try:
            entry.update(_train_epoch(loss_module, model, optimizer, averaged, examples, config, progress,
                                      total_steps, context, show_progress))  # fmt: skip
        except UserError:
            if context.is_main and progress.epoch == 0 and not resuming:
                shutil.rmtree(out_dir, ignore_errors=True)  # diverged before any epoch: leave no run folder
            raise
        eval_start = time.perf_counter()
        evaluated.eval()
        entry.update(validate(evaluated, trie, data, valid_users, config, context))
        entry["eval_seconds"] = time.perf_counter() - eval_start
        progress.epoch += 1
        score = entry[f"valid_ndcg@{VALID_K}"]
        improved = progress.best_metric is None or score > progress.best_metric
        if improved:
            progress.best_metric, progress.best_epoch, progress.stale_epochs = score, progress.epoch, 0
        else:
            progress.stale_epochs += 1
        progress.finished = progress.stale_epochs >= config.patience or progress.epoch >= config.max_epochs
        progress.log.append(entry)
        if context.is_main:
            if improved:
                save_model_artifact(
                    out_dir, evaluated, sid_table, config, extra={"best_epoch": progress.epoch}
                )
            save_training_state(out_dir, model, optimizer, progress, averaged)
            write_json(out_dir / TRAIN_LOG_FILE, progress.log)
            if show_progress:
                tqdm.write(_format_entry(entry, improved))
        barrier(context)
        epochs_this_call += 1
        if stop_after_epochs is not None and epochs_this_call >= stop_after_epochs and not progress.finished:
            weights = state_dict_sha256(model)
            return {"out_dir": str(out_dir), "rank": context.rank, "epochs": progress.epoch,
                    "finished": False, "final_weights_sha256": weights}  # fmt: skip

    final_weights = state_dict_sha256(model)  # this rank's weights after the last epoch
    # the best epoch's weights, maybe saved by an earlier (resumed) call
    best, _, _ = load_model_artifact(out_dir, device=context.device)
    metrics = _final_metrics(best, trie, data, config, context)
    summary = {
        "out_dir": str(out_dir),
        "rank": context.rank,
        "finished": True,
        "epochs": progress.epoch,
        "best_epoch": progress.best_epoch,
        f"best_valid_ndcg@{VALID_K}": progress.best_metric,
        "stopped_early": progress.stale_epochs >= config.patience,
        "world_size": context.world_size,
        "final_weights_sha256": final_weights,
        "seconds_this_call": time.perf_counter() - run_start,
        "seconds_in_epochs": sum(e["train_seconds"] + e["eval_seconds"] for e in progress.log),
        **metrics,
    }
    if context.is_main:
        write_json(out_dir / METRICS_FILE, summary)
    return summary


def _format_entry(entry: dict, improved: bool) -> str:
    mark = " *" if improved else ""
    return (
        f"epoch {entry['epoch']}: loss {entry['loss']:.4f}  valid NDCG@10 {entry['valid_ndcg@10']:.4f}  "
        f"Recall@10 {entry['valid_recall@10']:.4f}  {entry['targets_per_second']:,.0f} targets/s  "
        f"({entry['train_seconds']:.1f}s + eval {entry['eval_seconds']:.1f}s){mark}"
    )
