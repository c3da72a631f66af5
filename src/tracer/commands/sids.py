"""`tracer sids` (item vectors -> semantic IDs) and `tracer sids-stats` (token entanglement)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from tracer.semantic_ids.build import Method, SidsConfig, build_sids, concept_entanglement_report
from tracer.semantic_ids.encoders import ENCODERS
from tracer.semantic_ids.stats import format_entanglement, format_stats_table


def sids(
    data: Path = typer.Argument(..., help="Prepared dataset folder (`tracer prepare`)."),
    out: Path = typer.Option(..., "--out", help="Output folder for the SID artifact."),
    method: Method = typer.Option(Method.RQ_KMEANS, "--method", help="Tokenizer."),
    levels: int = typer.Option(3, "--levels", min=1, help="Codebook levels L (a dedup digit is appended)."),
    codebook_size: int | None = typer.Option(
        None, "--codebook-size", min=2, help="Codewords per level K (default: from the catalogue size)."
    ),
    encoder: str = typer.Option(
        "use",
        "--encoder",
        help=f"Item vectors: text encoder {' or '.join(ENCODERS)}, cf (collaborative: an SVD of "
        "who watched what in training) or cf-seq (an SVD of which items follow each other in training "
        "sequences).",
    ),
    vectors: Path | None = typer.Option(
        None,
        "--vectors",
        help="Precomputed item vectors (.npy aligned with items, or .parquet with item_id).",
    ),
    text: str = typer.Option("full", "--text", help="Item text to embed: full or title."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="RQ-VAE training epochs (default 200)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output folder."),
) -> None:
    """Embed item texts and tokenise them into semantic IDs (L codes + dedup digit)."""
    config = SidsConfig(
        method=method,
        levels=levels,
        codebook_size=codebook_size,
        encoder=encoder,
        vectors=vectors,
        text=text,
        seed=seed,
        epochs=epochs,
    )
    stats = build_sids(data, out, config, overwrite=overwrite)
    typer.echo(format_stats_table(stats))
    typer.echo(f"wrote {out} in {sum(stats['seconds'].values()):.1f} s")


def sids_stats(
    sids_dir: Path = typer.Argument(..., help="Folder written by `tracer sids`."),
    data: Path = typer.Option(..., "--data", help="The prepared dataset the SIDs were built from."),
    concept: str = typer.Option(..., "--concept", help="Concept spec, e.g. Horror or 'title~(?i)zombie'."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Token entanglement of a concept: per level, the share of its items sharing a prefix with others."""
    report = concept_entanglement_report(sids_dir, data, concept)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(f"{report['concept']}: {report['n_concept_items']} of {report['n_items']} items")
        typer.echo(format_entanglement(report["concept"], report["entanglement"]))


def register(app: typer.Typer) -> None:
    app.command("sids")(sids)
    app.command("sids-stats")(sids_stats)
