"""`tracer recommend MODEL --data DATA --split test --k 10 --out recs.parquet`."""

from __future__ import annotations

from pathlib import Path

import typer

from tracer.evaluation.evaluate import recommend


def recommend_command(
    model: Path = typer.Argument(..., help="A model folder (`tracer train --out` or an erased model)."),
    data: Path = typer.Option(..., "--data", help="The prepared dataset the model was trained on."),
    split: str = typer.Option(
        "test", "--split", help="test (history = train + valid) or valid (history = train)."
    ),
    k: int = typer.Option(10, "--k", min=1, help="Items per user."),
    beam: int | None = typer.Option(None, "--beam", min=1, help="Beam width (default max(20, k))."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Users decoded together."),
    device: str = typer.Option("auto", "--device", help="cpu, cuda, cuda:N or auto."),
    out: Path = typer.Option(..., "--out", help="Parquet file: user_id, rank (1..k), item_id, score."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file."),
) -> None:
    """Top-k items of every user by trie-constrained beam search (every item a real catalogue item)."""
    frame = recommend(model, data, split=split, k=k, beam_width=beam, batch_size=batch_size, device=device,
                      out=out, overwrite=overwrite)  # fmt: skip
    typer.echo(f"{frame['user_id'].nunique():,} users x {k} items -> {out}")


def register(app: typer.Typer) -> None:
    app.command("recommend")(recommend_command)
