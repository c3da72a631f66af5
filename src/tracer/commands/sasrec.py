"""`tracer sasrec`: the SASRec item-id baseline on a prepared dataset (same split and metrics)."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("sasrec")
    def sasrec(
        data: Path = typer.Argument(..., help="Prepared dataset folder (from `tracer prepare`)."),
        out: Path = typer.Option(..., "--out", help="Run folder to write (model, metrics, test recs)."),
        config: Path | None = typer.Option(None, "--config", help="YAML with `model:`/`train:` sections."),
        seed: int = typer.Option(0, "--seed", help="Random seed (init, batch order, dropout)."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out folder."),
    ) -> None:
        """Train SASRec (validation NDCG@10 early stopping) and report full-ranking test metrics."""
        from tracer.training.sasrec_train import run_sasrec

        metrics = run_sasrec(data, out, config=config, seed=seed, overwrite=overwrite)
        typer.echo(json.dumps({"valid": metrics["valid"], "test": metrics["test"]}, indent=2))
