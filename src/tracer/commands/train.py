"""`tracer train DATA SIDS --preset NAME --out DIR`: train a backbone (single process or torchrun DDP)."""

from __future__ import annotations

from pathlib import Path

import typer

from tracer.training.config import load_preset
from tracer.training.loop import train


def train_command(
    data: Path = typer.Argument(..., help="A prepared dataset folder (`tracer prepare`)."),
    sids: Path = typer.Argument(..., help="A SID table folder (`tracer sids`) built from the same dataset."),
    preset: str = typer.Option(
        ..., "--preset", help="A preset name in configs/ (e.g. ml-100k) or a YAML path."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Run folder: best model, SIDs, logs, metrics, resumable state."
    ),
    backbone: str | None = typer.Option(
        None, "--backbone", help="Override the preset's backbone (causal or tiger)."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the run in --out from its last completed epoch."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Delete an existing --out folder first."),
    seed: int | None = typer.Option(None, "--seed", help="Override the preset's seed."),
    max_epochs: int | None = typer.Option(
        None, "--max-epochs", min=1, help="Override the preset's max_epochs."
    ),
    device: str | None = typer.Option(
        None, "--device", help="cpu, cuda, cuda:N or auto (default: the preset's)."
    ),
    stop_after_epochs: int | None = typer.Option(
        None, "--stop-after-epochs", min=1, help="End this call after N epochs; continue later with --resume."
    ),
) -> None:
    """Train with AdamW + warmup/cosine, validate NDCG@10 every epoch, early-stop, keep the best model.

    Under `torchrun --nproc_per_node N -m tracer.cli train ...` it trains with DDP (gloo on CPU, nccl on GPU).
    """
    config = load_preset(preset).replace(seed=seed, max_epochs=max_epochs, device=device)
    summary = train(config, data, sids, out, resume=resume, backbone=backbone, overwrite=overwrite,
                    stop_after_epochs=stop_after_epochs)  # fmt: skip
    if summary["rank"] != 0:
        return
    if not summary["finished"]:
        typer.echo(f"stopped after epoch {summary['epochs']}: continue with --resume")
    else:
        test = summary["test"]["all"]
        typer.echo(
            f"best epoch {summary['best_epoch']} of {summary['epochs']}: "
            f"test Recall@10 {test['recall@10']:.4f} NDCG@10 {test['ndcg@10']:.4f} -> {out}"
        )


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
