"""Writers of tiny MovieLens-format ("atomic") files for tests."""

from __future__ import annotations

from pathlib import Path


def write_atomic_dataset(
    folder: Path,
    interactions: list[tuple[str, str, str]],
    items: list[tuple[str, str, str, str]],
    name: str = "ml-100k",
    inter_header: str = "user_id:token\titem_id:token\trating:float\ttimestamp:float",
    item_header: str = "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq",
    line_end: str = "\n",
) -> Path:
    """interactions: (user, item, timestamp); items: (item, title, year, space-separated genres)."""
    folder.mkdir(parents=True, exist_ok=True)
    inter_lines = [inter_header] + [f"{u}\t{i}\t4\t{t}" for u, i, t in interactions]
    item_lines = [item_header] + ["\t".join(row) for row in items]
    (folder / f"{name}.inter").write_text(line_end.join(inter_lines) + line_end)
    (folder / f"{name}.item").write_text(line_end.join(item_lines) + line_end)
    return folder


def small_catalogue(n_items: int = 6) -> list[tuple[str, str, str, str]]:
    genres = ["Horror", "Comedy", "Drama Horror", "Comedy", "Drama", "Children's Comedy"]
    return [(str(i + 1), f"Movie {i + 1}", "1990", genres[i % len(genres)]) for i in range(n_items)]
