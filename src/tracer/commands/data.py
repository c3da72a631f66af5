"""`tracer prepare` and `tracer concepts`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from tracer.data.artifact import load_dataset
from tracer.data.concepts import concept_table, concept_targets, evaluable_concepts, resolve_concept
from tracer.data.loaders import DATASETS, LoaderOptions, load_raw
from tracer.data.pipeline import PrepareConfig, write_prepared
from tracer.data.sequences import build_sequences
from tracer.data.synthetic import SyntheticConfig
from tracer.errors import UserError


def _split_list(value: str | None) -> list[str] | None:
    return None if value is None else [part.strip() for part in value.split(",") if part.strip()]


def _synthetic_config(
    dataset: str,
    users: int | None,
    items: str | None,
    interactions: int | None,
    concepts: int | None,
    seed: int,
) -> SyntheticConfig | None:
    """The synthetic world's size from the flags (None for other datasets, which must not set them)."""
    sizes = {"--users": users, "--interactions": interactions, "--concepts": concepts}
    if dataset != "synthetic":
        given = [flag for flag, value in sizes.items() if value is not None]
        if given:
            raise UserError(f"{', '.join(given)} only apply to --dataset synthetic")
        return None
    missing = [flag for flag, value in {**sizes, "--items": items}.items() if value is None]
    if missing:
        raise UserError(f"synthetic needs {', '.join(missing)}")
    try:
        n_items = int(items)
    except ValueError:
        raise UserError(f"synthetic --items is the number of items, got {items!r}") from None
    return SyntheticConfig(
        users=users, items=n_items, interactions=interactions, concepts=concepts, seed=seed
    )


def prepare(
    dataset: str = typer.Option(..., "--dataset", help=f"One of: {', '.join(DATASETS)}."),
    out: Path = typer.Option(..., "--out", help="Output folder for the prepared artifact."),
    path: Path | None = typer.Option(
        None,
        "--path",
        help="MovieLens: folder of the atomic files (default: the installed package). "
        "Amazon: the reviews file or a folder with reviews + meta. Tabular: the interactions table.",
    ),
    meta: Path | None = typer.Option(None, "--meta", help="Amazon metadata file."),
    items: str | None = typer.Option(
        None, "--items", help="Tabular: the items table (CSV/Parquet). Synthetic: the number of items."
    ),
    columns: Path | None = typer.Option(
        None, "--columns", help="Tabular: YAML mapping column roles to names."
    ),
    user_col: str | None = typer.Option(None, "--user-col", help="Tabular: user column."),
    item_col: str | None = typer.Option(None, "--item-col", help="Tabular: item column (both tables)."),
    time_col: str | None = typer.Option(None, "--time-col", help="Tabular: timestamp column."),
    title_col: str | None = typer.Option(
        None, "--title-col", help="Tabular: title column of the items table."
    ),
    text_cols: str | None = typer.Option(None, "--text-cols", help="Tabular: comma-separated text columns."),
    concept_cols: str | None = typer.Option(
        None, "--concept-cols", help="Tabular: comma-separated concept columns."
    ),
    kcore: int | None = typer.Option(
        None, "--kcore", min=1, help="k-core filter (users and items), to a fixed point."
    ),
    no_title_keywords: bool = typer.Option(
        False, "--no-title-keywords", help="Amazon: no kw:<word> concepts."
    ),
    users: int | None = typer.Option(None, "--users", help="Synthetic: number of users."),
    interactions: int | None = typer.Option(None, "--interactions", help="Synthetic: total interactions."),
    n_concepts: int | None = typer.Option(None, "--concepts", help="Synthetic: planted concepts (>= 2)."),
    seed: int = typer.Option(0, "--seed", help="Synthetic: random seed."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output folder."),
) -> None:
    """Load a dataset, filter, order and split it (leave-one-out), and write the artifact folder."""
    synthetic = _synthetic_config(dataset, users, items, interactions, n_concepts, seed)
    options = LoaderOptions(
        path=path,
        meta=meta,
        items=None if items is None or synthetic else Path(items),
        synthetic=synthetic,
        columns_yaml=columns,
        column_overrides={
            "user": user_col,
            "item": item_col,
            "item_id": item_col,
            "timestamp": time_col,
            "title": title_col,
            "text_columns": _split_list(text_cols),
            "concept_columns": _split_list(concept_cols),
        },
        title_keywords=not no_title_keywords,
    )
    if out.exists() and not overwrite:
        raise UserError(f"output folder {out} already exists: choose another --out or pass --overwrite")
    raw = load_raw(dataset, options)
    manifest = write_prepared(raw, PrepareConfig(kcore=kcore), out, overwrite=overwrite)
    typer.echo(
        f"{manifest['source']}: {manifest['n_users']:,} users, {manifest['n_items']:,} items, "
        f"{manifest['n_interactions']:,} interactions -> {out}"
    )
    if manifest["dropped_short_users"]:
        typer.echo(f"dropped {manifest['dropped_short_users']:,} users with fewer than 3 interactions")


def concepts(
    data: Path = typer.Argument(..., help="A prepared dataset folder."),
    show: str | None = typer.Option(None, "--show", help="Resolve one concept spec and describe it."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    min_test_users: int | None = typer.Option(
        None,
        "--min-test-users",
        help="Only concepts with at least this many test users whose test "
        "item is in them, most first (the concepts a benchmark can measure; 20 in docs/method.md §5.1).",
    ),
) -> None:
    """List every concept with its items, forget training targets and test users."""
    if min_test_users is not None and min_test_users < 1:
        raise UserError(f"--min-test-users must be at least 1, got {min_test_users}")
    dataset = load_dataset(data)
    sequences = build_sequences(dataset)
    if show is not None:
        concept = resolve_concept(dataset, show)
        targets = concept_targets(sequences, concept)
        summary = {
            "concept": show,
            "items": concept.n_items,
            "forget_targets": targets.n_forget,
            "retain_targets": targets.n_retain,
            "test_users": int(targets.forget_test_users.sum()),
            "example_titles": dataset.items["title"].to_numpy()[concept.item_indices[:5]].tolist(),
        }
        typer.echo(
            json.dumps(summary, indent=2)
            if as_json
            else "\n".join(f"{k:>15}: {v}" for k, v in summary.items())
        )
        return
    table = concept_table(dataset, sequences).sort_values("items", ascending=False)
    if min_test_users is not None:
        table = evaluable_concepts(table, min_test_users)
    if as_json:
        typer.echo(table.to_json(orient="records", indent=2))
    else:
        typer.echo(table.to_string(index=False))


def register(app: typer.Typer) -> None:
    app.command("prepare")(prepare)
    app.command("concepts")(concepts)
