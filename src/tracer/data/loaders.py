"""Dispatch ``tracer prepare --dataset NAME`` to the right loader."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tracer.data.raw import RawData
from tracer.data.synthetic import SyntheticConfig, generate_synthetic
from tracer.errors import UserError

DATASETS = ("ml-100k", "ml-1m", "amazon", "tabular", "synthetic")


@dataclass
class LoaderOptions:
    """Inputs of the loaders that need paths or column names (see ``tracer prepare --help``)."""

    path: Path | None = None
    meta: Path | None = None
    items: Path | None = None
    columns_yaml: Path | None = None
    column_overrides: dict = field(default_factory=dict)
    title_keywords: bool = True
    synthetic: SyntheticConfig | None = None


def _amazon_files(options: LoaderOptions) -> tuple[Path, Path]:
    if options.path is None:
        raise UserError(
            "amazon needs --path (the reviews 5-core file, or a folder holding it and the meta file)"
        )
    if options.path.is_dir():
        reviews = sorted(options.path.glob("*_5.json*"))
        metas = sorted(options.path.glob("meta_*.json*"))
        if len(reviews) != 1 or len(metas) != 1:
            raise UserError(
                f"{options.path} must hold exactly one '*_5.json[.gz]' and one 'meta_*.json[.gz]' file: "
                "or pass --path REVIEWS --meta META"
            )
        return reviews[0], metas[0]
    if options.meta is None:
        raise UserError("amazon needs --meta META (the metadata file) when --path is a reviews file")
    return options.path, options.meta


def load_raw(dataset: str, options: LoaderOptions) -> RawData:
    """Load ``dataset`` into :class:`RawData`; a UserError for an unknown name or missing input."""
    if dataset in ("ml-100k", "ml-1m"):
        from tracer.data.movielens import load_movielens

        return load_movielens(dataset, options.path)
    if dataset == "amazon":
        reviews, meta = _amazon_files(options)
        from tracer.data.amazon import load_amazon

        return load_amazon(reviews, meta, title_keywords=options.title_keywords)
    if dataset == "tabular":
        from tracer.data.tabular import TabularColumns, load_tabular

        if options.path is None or options.items is None:
            raise UserError("tabular needs --path INTERACTIONS and --items ITEMS (CSV or Parquet files)")
        columns = (
            TabularColumns.from_yaml(options.columns_yaml)
            if options.columns_yaml is not None
            else TabularColumns()
        )
        overrides = {key: value for key, value in options.column_overrides.items() if value is not None}
        if overrides:
            from dataclasses import replace

            columns = replace(columns, **overrides)
        return load_tabular(options.path, options.items, columns)
    if dataset == "synthetic":
        if options.synthetic is None:
            raise UserError("synthetic needs --users, --items, --interactions and --concepts")
        return generate_synthetic(options.synthetic)
    raise UserError(f"unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}")
