"""`tracer evaluate MODEL --data DATA [--concept SPEC] --out metrics.json`."""

from __future__ import annotations

from pathlib import Path

import typer

from tracer.attacks.suite import (
    ATTACKS,
    AttackSuiteConfig,
    format_attack_summary,
    probe_floor_line,
    run_attack_suite,
)
from tracer.distributed import resolve_device
from tracer.errors import UserError
from tracer.evaluation.erasure import ErasureEvalConfig, evaluate_erasure, format_headline
from tracer.evaluation.evaluate import evaluate_model, format_metrics_table
from tracer.io import write_json
from tracer.outputs import check_file_output


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
    retrain: Path | None = typer.Option(
        None, "--retrain", help="With --concept: the Retrain artifact, for the gaps and top-10 overlap."
    ),
    mass_users: int = typer.Option(
        200, "--mass-users", min=1, help="With --concept: users sampled for concept mass and rank."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing --out/--rankings files."),
    attacks: str | None = typer.Option(
        None,
        "--attacks",
        help=f"With --concept: also run these attacks at their defaults ({', '.join(ATTACKS)}).",
    ),
) -> None:
    """Recall@K and NDCG@K on all users of a split; with a concept also the retain/forget/exposure
    split, concept mass and rank, cost, and (with --retrain) the gaps to Retrain (docs/method.md §6)."""
    if attacks is not None and concept is None:
        raise UserError("--attacks needs --concept: name the erased concept")
    inputs = {"model": model, "dataset": data, **({} if retrain is None else {"Retrain model": retrain})}
    for path in (out, rankings):
        if path is not None:
            check_file_output(path, overwrite, inputs)
    result = evaluate_model(model, data, split=split, concept_spec=concept, k_max=k_max, beam_width=beam,
                            batch_size=batch_size, device=device, rankings_out=rankings)  # fmt: skip
    if concept is not None:
        settings = ErasureEvalConfig(split=split, k_max=k_max, beam_width=beam or max(20, k_max),
                                     batch_size=batch_size, mass_users=mass_users)  # fmt: skip
        where = str(resolve_device(device))
        reference = None if retrain is None else evaluate_erasure(retrain, data, concept, settings, where)
        erasure, _ = evaluate_erasure(model, data, concept, settings, where, reference)
        result.update({key: erasure[key] for key in ("concept_scores", "cost", "headline")})
        if "vs_retrain" in erasure:
            result["vs_retrain"] = erasure["vs_retrain"]
        if attacks is not None:
            suite = AttackSuiteConfig(attacks=tuple(a.strip() for a in attacks.split(",") if a.strip()))
            result["attacks"] = run_attack_suite(model, data, concept, suite, settings, where)
    write_json(out, result)
    typer.echo(format_metrics_table(result))
    if concept is not None:
        typer.echo(format_headline({str(model): result["headline"]}))
        if "vs_retrain" in result:
            typer.echo(
                ", ".join(f"{k} {v:.4f}" for k, v in result["vs_retrain"].items() if isinstance(v, float))
            )
        if "attacks" in result:
            typer.echo(format_attack_summary({str(model): result["attacks"]["summary"]}))
            if (floor := probe_floor_line(result["attacks"])) is not None:
                typer.echo(floor)
    typer.echo(f"-> {out}")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_command)
