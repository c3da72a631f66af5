"""The tuning behind a grid: each method's search space and the setting picked on the tuning concepts
(``DIR/picks.json``, copied there by `tracer bench` from the config's ``picks`` file; docs/method.md §5.1)."""

from __future__ import annotations

from html import escape
from pathlib import Path

from tracer.io import read_json

PICKS_FILE = "picks.json"
HEADER = ["method", "trials", "search space", "pick", "retain NDCG@10 / Retrain", "Exposure@10 - Retrain"]


def load_picks(folder: str | Path) -> dict | None:
    """The picks file of a results folder, or None when the grid ran without one."""
    path = Path(folder) / PICKS_FILE
    return read_json(path) if path.is_file() else None


def _settings(settings: dict) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(settings.items()))


def picks_rows(picks: dict) -> list[list[str]]:
    """One row of HEADER per tuned method; the best baseline is starred. The last two columns: the pick's
    mean share of Retrain's retain NDCG@10 and its largest Exposure@10 above Retrain's, over the tuning
    concepts (validation)."""
    rows = []
    for method, pick in picks["methods"].items():
        name = f"{method} *" if method == picks["best_baseline"] else method
        space = "; ".join(f"{key} {values}" for key, values in sorted(pick["space"].items()))
        rows.append([name, str(pick["trials"]), space, _settings(pick["settings"]),
                     f"{pick['retain_share']:.1%}", f"{pick['exposure_above_retrain']:+.4f}"])  # fmt: skip
    return rows


def _caption(picks: dict) -> str:
    return (
        f"Tuned on {', '.join(picks['concepts'])} (validation). Rule: {picks['rule']}; {picks['pooling']}. "
        "* the best baseline."
    )


def format_picks_table(picks: dict) -> str:
    """A fixed-width text table of :func:`picks_rows` for the terminal, with the rule under it."""
    rows = [HEADER, *picks_rows(picks)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    return "\n".join([text[0], "  ".join("-" * w for w in widths), *text[1:], _caption(picks)])


def picks_html(picks: dict) -> str:
    """The report's tuning section."""
    head = "".join(f"<th>{escape(cell)}</th>" for cell in HEADER)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in picks_rows(picks)
    )
    return (
        '<section id="tuning"><h2>Tuning: search spaces and picks</h2><div class="table-wrap">'
        f'<table class="metrics"><caption>{escape(_caption(picks))}</caption><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div></section>"
    )
