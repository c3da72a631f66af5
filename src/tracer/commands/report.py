"""`tracer report DIR [--out FILE]`: one HTML report (+ PNGs in DIR/plots) of a results folder."""

from __future__ import annotations

from pathlib import Path

import typer

from tracer.reporting.html import write_report
from tracer.reporting.picks import format_picks_table, load_picks
from tracer.reporting.results import aggregate, format_headline_table, load_results


def report_command(
    folder: Path = typer.Argument(..., help="Results folder holding results.json (written by the runs)."),
    out: Path | None = typer.Option(None, "--out", help="Report file (default DIR/report.html)."),
) -> None:
    """Write the HTML report of a results folder and print the headline metrics (mean±std over seeds)."""
    report = write_report(folder, out=out)
    typer.echo(format_headline_table(aggregate(load_results(folder).rows)))
    picks = load_picks(folder)
    if picks is not None:
        typer.echo("\n" + format_picks_table(picks))
    typer.echo(f"-> {report}")


def register(app: typer.Typer) -> None:
    app.command("report")(report_command)
