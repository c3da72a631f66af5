"""`tracer evaluate MODEL --data DATA [--concept SPEC] --out metrics.json`."""

from __future__ import annotations

from pathlib import Path

import typer

from tracer.evaluation.evaluate import evaluate_model, format_metrics_table


def evaluate_command(
    model: Path = typer.Argument(..., help="A model folder (`tracer train --out` or an erased model)."),
    data: Path = typer.Option(..., "--data", help="The prepared dataset the model was trained on."),
    concept: str | None = typer.Option(
        None, "--concept", help="Concept spec: adds retain/forget/exposure metrics."
    ),
    split: str = typer.Option("test", "--split", help="test or valid."),
    k_max: int = typer.Option(20, "--k-max", min=1, help="Largest K (metrics at 5, 10, 20 up to it)."),
    beam: int | None = typer.Option(None, "--beam", min=1, help="Beam width (default max(20, k-max))."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Users decoded together."),
    device: str = typer.Option("auto", "--device", help="cpu, cuda, cuda:N or auto."),
    out: Path = typer.Option(..., "--out", help="Metrics JSON."),
    rankings: Path | None = typer.Option(None, "--rankings", help="Also save the ranked lists (Parquet)."),
) -> None:
    """Recall@K and NDCG@K on all users of a split (plus retain/forget/exposure with a concept)."""
    result = evaluate_model(model, data, split=split, concept_spec=concept, k_max=k_max, beam_width=beam,
                            batch_size=batch_size, device=device, out=out, rankings_out=rankings)  # fmt: skip
    typer.echo(format_metrics_table(result))
    typer.echo(f"-> {out}")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_command)
