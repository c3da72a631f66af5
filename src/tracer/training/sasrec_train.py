"""Training and full-ranking evaluation of the SASRec baseline (docs/method.md §1.5 and §2).

Same leave-one-out split and metric functions as the generative models: every training sequence is cut
into windows of ``max_len`` inputs (from the end, so every training target is used once per epoch), the
model is trained with full-softmax cross-entropy (or BCE with one sampled negative) at every position,
validation NDCG@10 is measured every epoch over the full catalogue (no item is excluded: the target may
be any item, also one seen before), training stops early with ``patience`` (not before ``min_epochs``)
and keeps the best weights.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from tracer.data.artifact import load_dataset
from tracer.data.sequences import SequenceData, Split, build_sequences
from tracer.errors import UserError
from tracer.evaluation.metrics import ndcg_at_k, recall_at_k
from tracer.io import write_json, write_parquet
from tracer.model.base import PAD_ITEM
from tracer.model.sasrec import SASRec, SASRecConfig, left_pad, save_sasrec
from tracer.outputs import claim_folder
from tracer.typed_config import load_config, read_yaml

METRIC_KS = (5, 10, 20)
TOP_K = max(METRIC_KS)
SELECTION_METRIC = "ndcg@10"


class Loss(str, Enum):
    CE = "ce"  # softmax cross-entropy over the full catalogue
    BCE = "bce"  # binary cross-entropy with one uniformly sampled negative (the paper's loss)


@dataclass
class SASRecTrainConfig:
    loss: Loss = Loss.CE
    lr: float = 3e-3
    weight_decay: float = 0.0
    batch_size: int = 128
    max_epochs: int = 200
    patience: int = 5
    min_epochs: int = 20  # no early stop before this: validation plateaus at popularity level early on
    eval_batch_size: int = 1024

    def validate(self) -> None:
        self.loss = Loss(self.loss)
        if self.lr <= 0 or self.batch_size < 1 or self.max_epochs < 1 or self.patience < 1:
            raise ValueError("lr, batch_size, max_epochs and patience must be positive")
        if self.min_epochs < 0 or self.weight_decay < 0:
            raise ValueError("min_epochs and weight_decay must be >= 0")


@dataclass
class SASRecSettings:
    """Everything a run needs besides data and seed; YAML sections ``model`` and ``train``."""

    model: SASRecConfig = field(default_factory=SASRecConfig)
    train: SASRecTrainConfig = field(default_factory=SASRecTrainConfig)

    @classmethod
    def from_dict(cls, raw: dict | None, source: str = "SASRec config") -> SASRecSettings:
        """The settings from a ``{model: ..., train: ...}`` mapping (typed loader: errors name the key
        and ``source``); the defaults are those of ``configs/sasrec.yaml`` (a test proves it)."""
        settings = load_config(cls, raw, source)
        try:
            replace(settings.model, n_items=max(settings.model.n_items, 1)).validate()
            settings.train.validate()
        except ValueError as error:
            raise UserError(f"invalid SASRec config: {error}") from error
        return settings

    @classmethod
    def from_yaml(cls, path: str | Path) -> SASRecSettings:
        return cls.from_dict(read_yaml(path, "config file"), str(path))

    def with_overrides(self, overrides: dict) -> SASRecSettings:
        """Copy with dotted keys replaced, e.g. ``{"model.hidden_size": 128, "train.lr": 3e-3}``."""
        raw = self.to_dict()
        for key, value in overrides.items():
            section, _, name = key.partition(".")
            if section not in raw or name not in raw[section]:
                raise UserError(f"unknown SASRec setting {key!r}: use model.<field> or train.<field>")
            raw[section][name] = value
        return SASRecSettings.from_dict(raw)

    def to_dict(self) -> dict:
        train = asdict(self.train)
        train["loss"] = Loss(train["loss"]).value
        return {"model": asdict(self.model), "train": train}


@dataclass
class SASRecResult:
    """A finished run: best model, per-epoch log and metrics; ``test_ranked``/``test_scores`` (U, TOP_K)."""

    model: SASRec
    best_epoch: int
    train_seconds: float
    log: list[dict]
    valid: dict[str, float]
    test: dict[str, float]
    test_ranked: np.ndarray
    test_scores: np.ndarray


def training_windows(train_sequences: list[np.ndarray], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut each sequence into windows whose targets are its next items, every target exactly once.

    A sequence s of length n has targets s[1:]; windows are taken from the end (inputs s[e-1-L : e-1],
    targets s[e-L : e] for e = n, n-L, ...), the first one shorter. Returns inputs and targets, both
    (n_windows, max_len) int64, left-padded with PAD_ITEM.
    """
    inputs, targets = [], []
    for seq in train_sequences:
        end = len(seq)
        while end >= 2:
            start = max(end - max_len, 1)
            inputs.append(seq[start - 1 : end - 1])
            targets.append(seq[start:end])
            end = start
    if not inputs:
        raise UserError("no training targets: every user needs at least 2 training interactions")
    return left_pad(inputs, max_len).numpy(), left_pad(targets, max_len).numpy()


def batch_order(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of window indices, windows of similar length together (less padding).

    Windows are shuffled, sorted by length within chunks of 50 batches, cut into batches, and the batches
    shuffled again.
    """
    order = rng.permutation(len(lengths))
    chunk = 50 * batch_size
    batches = []
    for begin in range(0, len(order), chunk):
        part = order[begin : begin + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def window_loss(model: SASRec, inputs: torch.Tensor, targets: torch.Tensor, loss: Loss) -> torch.Tensor:
    """Mean next-item loss over the real positions of a batch of windows (B, T)."""
    real = targets != PAD_ITEM
    hidden = model.hidden_states(inputs)[real]  # (N, d)
    wanted = targets[real]  # (N,)
    if loss is Loss.CE:
        return F.cross_entropy(model.score(hidden).float(), wanted)
    table = model.item_table
    # uniform negative among the other items: shift the target by 1..n_items-1 (mod n_items)
    shift = torch.randint(1, max(model.config.n_items, 2), wanted.shape, device=wanted.device)
    negatives = (wanted + shift) % model.config.n_items
    positive_logit = (hidden * table[wanted]).sum(-1).float()
    negative_logit = (hidden * table[negatives]).sum(-1).float()
    return F.binary_cross_entropy_with_logits(
        positive_logit, torch.ones_like(positive_logit)
    ) + F.binary_cross_entropy_with_logits(negative_logit, torch.zeros_like(negative_logit))


@torch.inference_mode()
def rank_histories(
    model: SASRec, histories: list[np.ndarray], batch_size: int = 1024, top_k: int = TOP_K
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k items over the full catalogue after each history -> (item indices, scores), both (U, k).

    Users are batched by history length (less padding; left padding does not change the scores).
    """
    model.eval()
    device = next(model.parameters()).device
    k = min(top_k, model.config.n_items)
    ranked = np.zeros((len(histories), k), dtype=np.int64)
    scores = np.zeros((len(histories), k), dtype=np.float32)
    lengths = np.array([min(len(h), model.config.max_len) for h in histories])
    order = np.argsort(lengths, kind="stable")
    for begin in range(0, len(order), batch_size):
        users = order[begin : begin + batch_size]
        batch = left_pad([histories[u] for u in users], int(lengths[users].max())).to(device)
        with _autocast(device):
            top = torch.topk(model(batch).float(), k=k, dim=1)
        ranked[users] = top.indices.cpu().numpy()
        scores[users] = top.values.cpu().numpy()
    return ranked, scores


def ranking_metrics(ranked: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Mean Recall@K and NDCG@K (K in METRIC_KS) of ranked lists (U, K') against targets (U,)."""
    out = {}
    for k in METRIC_KS:
        out[f"recall@{k}"] = float(np.mean(recall_at_k(ranked, targets, k)))
        out[f"ndcg@{k}"] = float(np.mean(ndcg_at_k(ranked, targets, k)))
    return out


def evaluate(
    model: SASRec, data: SequenceData, split: Split | str, batch_size: int = 1024
) -> dict[str, float]:
    """Full-ranking metrics of one split for all users."""
    ranked, _ = rank_histories(model, data.histories(split), batch_size)
    return ranking_metrics(ranked, data.targets(split))


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _autocast(device: torch.device):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def train_sasrec(
    data: SequenceData,
    settings: SASRecSettings,
    seed: int = 0,
    device: torch.device | None = None,
    progress: bool = True,
) -> SASRecResult:
    """Train SASRec on the training sequences, select the epoch on validation NDCG@10, test the best."""
    device = device or default_device()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model_config = SASRecConfig(**{**asdict(settings.model), "n_items": data.n_items})
    train = settings.train
    train.validate()
    model = SASRec(model_config).to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=train.lr, weight_decay=train.weight_decay, fused=device.type in ("cpu", "cuda")
    )
    inputs, targets = training_windows(data.train_sequences, model_config.max_len)
    lengths = (inputs != PAD_ITEM).sum(axis=1)

    log: list[dict] = []
    best = {"epoch": 0, SELECTION_METRIC: -1.0, "state": None}
    train_seconds = 0.0
    epochs = tqdm(range(1, train.max_epochs + 1), desc="sasrec", disable=not progress, dynamic_ncols=True)
    for epoch in epochs:
        started = time.perf_counter()
        model.train()
        total, count = 0.0, 0
        for batch in batch_order(lengths, train.batch_size, rng):
            width = int(lengths[batch].max())
            batch_inputs = torch.from_numpy(inputs[batch, -width:]).to(device)
            batch_targets = torch.from_numpy(targets[batch, -width:]).to(device)
            with _autocast(device):
                loss = window_loss(model, batch_inputs, batch_targets, train.loss)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
            count += len(batch)
        epoch_seconds = time.perf_counter() - started
        train_seconds += epoch_seconds
        valid = evaluate(model, data, Split.VALID, train.eval_batch_size)
        log.append({"epoch": epoch, "loss": total / count, "seconds": epoch_seconds, **valid})
        if valid[SELECTION_METRIC] > best[SELECTION_METRIC]:
            best = {"epoch": epoch, SELECTION_METRIC: valid[SELECTION_METRIC], "state": _copy_state(model)}
        epochs.set_postfix(
            loss=f"{total / count:.3f}", ndcg10=f"{valid[SELECTION_METRIC]:.4f}", best=best["epoch"]
        )
        if epoch >= train.min_epochs and epoch - best["epoch"] >= train.patience:
            break
    epochs.close()

    model.load_state_dict(best["state"])
    valid = evaluate(model, data, Split.VALID, train.eval_batch_size)
    test_ranked, test_scores = rank_histories(model, data.histories(Split.TEST), train.eval_batch_size)
    test = ranking_metrics(test_ranked, data.test_targets)
    return SASRecResult(model, best["epoch"], train_seconds, log, valid, test, test_ranked, test_scores)


def _copy_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def recommendations_frame(data: SequenceData, ranked: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    """Top lists (U, K) -> long table user_id, rank (1..K), item_id (string ids), score."""
    n_users, k = ranked.shape
    return pd.DataFrame(
        {
            "user_id": np.repeat(data.user_ids, k).astype(str),
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int64), n_users),
            "item_id": data.item_ids[ranked.reshape(-1)].astype(str),
            "score": scores.reshape(-1).astype(np.float32),
        }
    )


def run_sasrec(
    data_dir: str | Path,
    out: str | Path,
    config: str | Path | None = None,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """`tracer sasrec`: train on a prepared dataset folder and write the run folder; returns metrics.

    Writes ``model.safetensors``, ``config.json``, ``metrics.json``, ``train_log.json`` and
    ``recs_test.parquet`` (user_id, rank, item_id, score) into ``out``.
    """
    settings = SASRecSettings.from_yaml(config) if config is not None else SASRecSettings()
    with claim_folder(out, overwrite, {"dataset": Path(data_dir)}) as stage:
        data = build_sequences(load_dataset(data_dir))
        device = default_device()
        result = train_sasrec(data, settings, seed=seed, device=device, progress=progress)
        metrics = {
            "valid": result.valid,
            "test": result.test,
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.log),
            "train_seconds": result.train_seconds,
            "selection": f"valid {SELECTION_METRIC}",
            "ranking": "full catalogue, no item excluded",
        }
        run_info = {
            "settings": settings.to_dict(),
            "seed": seed,
            "data": str(Path(data_dir)),
            "n_users": data.n_users,
            "n_items": data.n_items,
            "device": device.type,
            "torch": torch.__version__,
        }
        save_sasrec(result.model, stage, extra=run_info)
        write_json(stage / "metrics.json", metrics)
        write_json(stage / "train_log.json", result.log)
        write_parquet(
            stage / "recs_test.parquet", recommendations_frame(data, result.test_ranked, result.test_scores)
        )
    return metrics
