"""`tracer bench CONFIG.yaml --out DIR` and `tracer demo [--out DIR]`."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer

from tracer.data.artifact import load_dataset
from tracer.data.concepts import concept_table
from tracer.data.sequences import build_sequences
from tracer.errors import UserError
from tracer.pipelines.bench import run_bench
from tracer.pipelines.bench_config import load_bench_config
from tracer.reporting.html import write_report
from tracer.reporting.picks import format_picks_table, load_picks
from tracer.reporting.results import aggregate, format_headline_table, load_results
from tracer.resources import config_file

DEMO_CONFIG = config_file("demo.yaml")


def _run_and_report(config_path: Path, out: Path, device: str) -> None:
    config = load_bench_config(config_path)
    started = time.perf_counter()
    results = run_bench(config, out, command=" ".join(["tracer", *sys.argv[1:]]), device=device)
    report = write_report(out)
    typer.echo(format_headline_table(aggregate(load_results(out).rows)))
    for warning in results["meta"]["warnings"]:
        typer.echo(f"warning: {warning}", err=True)
    picks = load_picks(out)
    if picks is not None:
        typer.echo("\n" + format_picks_table(picks))
    typer.echo(f"\nreport: {report}\nresults: {out / 'results.json'}  ({time.perf_counter() - started:.0f}s)")


def bench_command(
    config: Path = typer.Argument(..., help="Bench config YAML (datasets x concepts x methods x seeds)."),
    out: Path = typer.Option(..., "--out", help="Results folder; finished cells are reused (resumable)."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
) -> None:
    """Run a benchmark grid resumably; write results.json/csv, the rankings and the report."""
    _run_and_report(config, out, device)


def demo_command(
    out: Path = typer.Option(Path("demo-out"), "--out", help="Output folder."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue in an existing folder (finished steps are reused)."
    ),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
) -> None:
    """The end-to-end demo on built-in ML-100k: prepare, SIDs, train, erase "Horror" with TRACER, Retrain,
    GA, NPO and Filter, evaluate all, and write the report."""
    if out.exists() and any(out.iterdir()) and not resume:
        raise UserError(f"{out} already exists: pass --resume to continue it, or choose another --out")
    _run_and_report(DEMO_CONFIG, out, device)
    data_dir = next((out / "work" / "ml-100k").glob("data-*"))
    dataset = load_dataset(data_dir)
    manifest = dataset.manifest
    typer.echo(
        f"\nML-100k: {manifest['n_users']:,} users, {manifest['n_items']:,} items, "
        f"{manifest['n_interactions']:,} interactions; its concepts (genres):"
    )
    table = concept_table(dataset, build_sequences(dataset)).sort_values("items", ascending=False)
    typer.echo(table.to_string(index=False))


def register(app: typer.Typer) -> None:
    app.command("bench")(bench_command)
    app.command("demo")(demo_command)
