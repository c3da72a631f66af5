"""Safe output destinations: checked before any work, claimed exclusively, staged, then renamed.

- :func:`check_apart`: ``--out`` is not an input (the parent model, the dataset), inside one, or an
  ancestor of one, whatever the spelling (symlinks, ``..``).
- :func:`claim_folder`: an exclusive claim on an output folder (``flock`` on ``.NAME.lock`` next to
  it, released by the kernel when the process dies), so that of two concurrent writers exactly one
  proceeds. Under the claim, the folder is built in ``.NAME.partial`` and renamed into place; a stale
  ``.NAME.partial`` left by a killed run is removed, a stale ``.NAME.old`` put back or removed.
  :func:`hold_claim` is the claim alone, for a writer that works in place (``tracer train``).
- :func:`check_file_output`: a file output (Parquet, JSON) refuses an existing file unless
  ``overwrite``, and never lands inside a model folder or an input.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tracer.errors import UserError

_UMASK = os.umask(0)
os.umask(_UMASK)

MODEL_MARKER = "model.safetensors"  # a folder holding it is a model folder: no file output goes inside
SIGNATURES = (  # file sets only this tool writes together: SID table, training run, SASRec run
    ("sid_table.json",),
    ("train_config.yaml",),
    ("config.json", "metrics.json", "recs_test.parquet"),
)


def written_by_tracer(folder: Path) -> bool:
    """Whether ``folder`` is one this tool wrote (only those may be replaced by ``--overwrite``): a
    prepared dataset or an erased model (``manifest.json`` naming ``tracer_version``), a SID table
    (``sid_table.json``), a training run (``train_config.yaml``) or a SASRec run."""
    if any(all((folder / name).is_file() for name in names) for names in SIGNATURES):
        return True
    try:
        return "tracer_version" in json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError, TypeError):
        return False


def check_apart(out: Path, inputs: dict[str, Path]) -> None:
    """Refuse an ``out`` that is an input, lies inside one, or contains one (``inputs``: role -> path)."""
    target = Path(os.path.realpath(out))
    for role, path in inputs.items():
        source = Path(os.path.realpath(path))
        if target == source:
            raise UserError(
                f"--out {out} is the {role} {path}: the {role} is never modified; choose another --out"
            )
        if source in target.parents:
            raise UserError(f"--out {out} lies inside the {role} {path}: choose a folder outside it")
        if target in source.parents:
            raise UserError(f"--out {out} contains the {role} {path}: choose a folder that holds no input")


def check_writable(out: Path) -> None:
    """Refuse a destination whose nearest existing folder cannot be written (a read-only filesystem, no
    permission): a temporary file is created and removed there, so root is not fooled by permissions."""
    existing = Path(os.path.abspath(out)).parent
    while not existing.exists():
        existing = existing.parent
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise UserError(
            f"cannot write {out}: {existing} is not a writable folder ({error.strerror}); "
            "choose another --out"
        ) from None


def check_file_output(out: Path, overwrite: bool, inputs: dict[str, Path]) -> None:
    """Checks of a file output, before any work: not an input, not inside a model folder, not an
    existing file without ``overwrite``, never a folder, writable."""
    check_apart(out, inputs)
    for folder in Path(os.path.realpath(out)).parents:
        if (folder / MODEL_MARKER).is_file():
            raise UserError(f"--out {out} lies inside the model folder {folder}: write it elsewhere")
    if out.is_dir():
        raise UserError(f"--out {out} is a folder: give a file path")
    if out.exists() and not overwrite:
        raise UserError(f"--out {out} already exists: choose another path or pass --overwrite")
    check_writable(out)


@contextmanager
def claim_folder(
    out: str | Path,
    overwrite: bool,
    inputs: dict[str, Path],
    replaceable: Callable[[Path], bool] = written_by_tracer,
) -> Iterator[Path]:
    """Claim ``out`` and yield an empty staging folder; on success it replaces ``out`` (renamed).

    Refused before any work: ``out`` next to or around an input (:func:`check_apart`), an existing
    ``out`` without ``overwrite`` or one that ``replaceable`` does not recognise as this tool's, an
    unwritable parent, or another writer holding the claim. On failure nothing is left (not even the
    parent folders this call created) and a replaced folder keeps its old contents.
    """
    out = Path(out)
    check_apart(out, inputs)
    _check_replaceable(out, overwrite, replaceable)
    check_writable(out)
    created = [folder for folder in (out.parent, *out.parent.parents) if not folder.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = out.parent / f".{out.name}.partial"
    backup = out.parent / f".{out.name}.old"
    try:
        with hold_claim(out):
            _recover(out, stage, backup)
            _check_replaceable(out, overwrite, replaceable)  # a writer may have finished meanwhile
            stage.mkdir()
            os.chmod(stage, 0o777 & ~_UMASK)
            try:
                yield stage
                if out.exists():
                    os.replace(out, backup)
                    os.replace(stage, out)
                    shutil.rmtree(backup)
                else:
                    os.replace(stage, out)
            finally:
                shutil.rmtree(stage, ignore_errors=True)
    finally:
        _remove_empty(created)  # what a failed call created (after a success ``out`` is in the way)


@contextmanager
def hold_claim(out: Path) -> Iterator[None]:
    """The exclusive claim on ``out``: a ``flock`` on ``.NAME.lock`` in its (existing) parent folder,
    released (and the file removed) at the end, or by the kernel when the process dies."""
    lock = out.parent / f".{out.name}.lock"
    handle = _lock(lock, out)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        os.close(handle)


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders a failed call created (deepest first), as long as they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _check_replaceable(out: Path, overwrite: bool, replaceable: Callable[[Path], bool]) -> None:
    if not out.exists() and not out.is_symlink():
        return
    if not overwrite:
        raise UserError(f"output folder {out} already exists: choose another --out or pass --overwrite")
    if not out.is_dir() or out.is_symlink() or not replaceable(out):
        raise UserError(
            f"--overwrite replaces only a folder written by tracer, and {out} is not one: "
            "choose another --out"
        )


def _lock(lock: Path, out: Path) -> int:
    """An exclusive, non-blocking ``flock`` on ``lock`` (created if needed) -> its descriptor."""
    try:
        handle = os.open(lock, os.O_CREAT | os.O_RDWR, 0o666)
    except OSError as error:
        raise UserError(f"cannot write next to {out} ({error.strerror}); choose another --out") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held = os.fstat(handle).st_ino == os.stat(lock).st_ino  # else the holder finished and removed it
    except (BlockingIOError, FileNotFoundError):
        held = False
    if not held:
        os.close(handle)
        raise UserError(
            f"another tracer command is writing {out}: wait for it to finish or choose another --out"
        )
    return handle


def _recover(out: Path, stage: Path, backup: Path) -> None:
    """Under the claim: undo what a killed writer left (its staging folder, a half-done replacement)."""
    shutil.rmtree(stage, ignore_errors=True)
    if backup.is_dir():
        if out.exists():
            shutil.rmtree(backup)
        else:
            os.replace(backup, out)  # killed between the two renames: the old folder comes back
