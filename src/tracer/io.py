"""Atomic artifact writes: everything is written to a temporary sibling and renamed into place."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from tracer.errors import UserError

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


_KINDS = {
    "string": lambda column: (
        isinstance(column.dtype, pd.StringDtype)
        or (column.dtype == object and column.map(type).eq(str).all())
    ),
    "integer": pd.api.types.is_integer_dtype,
    "list": lambda column: column.dtype == object and column.map(lambda v: hasattr(v, "__len__")).all(),
}


def read_table(path: str | Path, columns: dict[str, str], fix: str) -> pd.DataFrame:
    """Read the Parquet file ``path``, which must hold ``columns`` (name -> ``string``, ``integer`` or
    ``list``); UserError naming the file and ``fix`` when it is unreadable or a column is missing or of
    another kind."""
    try:
        frame = pd.read_parquet(path)
    except Exception as error:  # pyarrow raises several types for truncated or foreign bytes
        reason = (str(error).splitlines() or [type(error).__name__])[0]
        reason = reason.split("': ", 1)[-1]  # pyarrow repeats the path: "Could not open ... '<path>': why"
        raise UserError(f"{path} is not a readable Parquet file ({reason}): {fix}") from None
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise UserError(f"{path} lacks column(s) {', '.join(missing)}: {fix}")
    for name, kind in columns.items():
        if len(frame) and not _KINDS[kind](frame[name]):
            raise UserError(f"{path}: column {name} must hold {kind} values, not {frame[name].dtype}: {fix}")
    return frame


def read_json_checked(path: str | Path, fix: str) -> Any:
    """:func:`read_json` with a UserError naming the file and ``fix`` when it is not valid JSON."""
    try:
        return read_json(path)
    except (ValueError, UnicodeDecodeError) as error:
        raise UserError(f"{path} is not valid JSON ({str(error)[:80]}): {fix}") from None


def write_parquet(path: str | Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_tree(folder: str | Path) -> str:
    """Hash of every file's relative path and bytes under ``folder`` (sorted), to prove it unchanged."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(folder)).encode())
        digest.update(sha256_file(file).encode())
    return digest.hexdigest()
