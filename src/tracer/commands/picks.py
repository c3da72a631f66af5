"""`tracer picks SWEEP_DIR... --out PICKS.json [--bench CONFIG.yaml]`: one setting per method from the
tuning concepts' sweeps, applied unchanged to a held-out grid (docs/method.md §5.1)."""

from __future__ import annotations

from pathlib import Path

import typer

from tracer.io import write_json
from tracer.outputs import check_file_output
from tracer.pipelines.bench_config import write_picks
from tracer.reporting.picks import format_picks_table
from tracer.unlearning.picks import POOLING, load_sweeps, select_picks
from tracer.unlearning.sweep import RULE


def picks_command(
    sweeps: list[Path] = typer.Argument(
        ...,
        help="Tuning folders of benchmarks/erasure_sweeps.py (ROOT/<method>/sweep.json), one per "
        "tuning concept (and parent).",
    ),
    out: Path = typer.Option(..., "--out", help="The picks file to write (JSON); replaced if present."),
    bench: Path | None = typer.Option(
        None,
        "--bench",
        help="A bench config to apply the picks to, in place: its methods (the best "
        "baseline replaces the other tuned baselines), method_settings and picks lines.",
    ),
) -> None:
    check_file_output(out, True, {f"sweep {i}": path for i, path in enumerate(sweeps)})
    picks = select_picks(load_sweeps(sweeps))
    write_json(out, picks)
    if bench is not None:
        write_picks(bench, out, picks)
    typer.echo(format_picks_table(picks))
    typer.echo(f"-> {out}" + (f" and {bench}" if bench is not None else ""))


PICKS_HELP = (
    f"Each method's setting for a held-out grid, from the tuning concepts' validation sweeps: {POOLING}. "
    f"Rule: {RULE} "
    "(docs/method.md §5.1). The best baseline is picked by the same rule over the baselines' picks."
)


def register(app: typer.Typer) -> None:
    app.command("picks", help=PICKS_HELP)(picks_command)
