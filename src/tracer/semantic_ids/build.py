"""The semantic-ID stage: prepared dataset -> item vectors -> tokenizer -> SID table + statistics.

Output folder (claimed and written atomically with :func:`tracer.outputs.claim_folder`):
``sids.parquet`` + ``sid_table.json`` (:class:`SidTable`), ``tokenizer.safetensors`` (codes, codebooks,
residuals), ``item_vectors.npy`` (the frozen item vectors, float32 (n_items, d), used by TRACER's
nearest neighbours) and ``stats.json``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from enum import Enum
from pathlib import Path

import numpy as np

from tracer.data.artifact import Dataset, load_dataset
from tracer.data.sequences import SequenceData, build_sequences
from tracer.errors import UserError
from tracer.io import atomic_path, read_json, read_json_checked, write_json
from tracer.outputs import claim_folder
from tracer.semantic_ids.collaborative import collaborative_item_vectors, sequential_item_vectors
from tracer.semantic_ids.encoders import ENCODERS, embed_texts, item_texts, load_item_vectors
from tracer.semantic_ids.quantization import Tokenization, default_codebook_size, save_tokenization
from tracer.semantic_ids.rq_kmeans import RQKMeansConfig, fit_rq_kmeans
from tracer.semantic_ids.rq_vae import RQVAEConfig, fit_rq_vae
from tracer.semantic_ids.sid_table import SidTable
from tracer.semantic_ids.stats import sid_statistics, token_entanglement
from tracer.typed_config import load_config

VECTORS_FILE = "item_vectors.npy"
STATS_FILE = "stats.json"
COLLABORATIVE = "cf"  # --encoder cf: item vectors from the training interactions, not from text
SEQUENTIAL = "cf-seq"  # --encoder cf-seq: from items watched near each other in training sequences
INTERACTION_ENCODERS = (COLLABORATIVE, SEQUENTIAL)
# Concepts whose entanglement stats.json reports (the largest ones, to keep it short on big catalogues).
MAX_REPORTED_CONCEPTS = 20


class Method(str, Enum):
    RQ_KMEANS = "rq-kmeans"
    RQ_VAE = "rq-vae"


@dataclass
class SidsConfig:
    """Settings of ``tracer sids``. ``codebook_size`` None: :func:`default_codebook_size`.
    ``vectors``: precomputed item vectors instead of the encoder. ``epochs`` None: RQ-VAE default."""

    method: Method = Method.RQ_KMEANS
    levels: int = 3
    codebook_size: int | None = None
    encoder: str = "use"
    vectors: Path | None = None
    text: str = "full"
    seed: int = 0
    epochs: int | None = None
    cache_dir: Path | None = None


def item_vectors(
    dataset: Dataset, config: SidsConfig, progress: bool = True, sequences: SequenceData | None = None
) -> np.ndarray:
    """float32 (n_items, d): precomputed ``config.vectors``, collaborative vectors of the training
    interactions (encoders ``cf``, ``cf-seq``) or the text encoder on the chosen item text.
    ``sequences``: the training sequences the interaction encoders read (None: all of ``dataset``'s;
    Retrain passes them without the forget targets)."""
    item_ids = dataset.items["item_id"].astype(str).to_numpy()
    if config.vectors is not None:
        return load_item_vectors(config.vectors, item_ids)
    if config.encoder in INTERACTION_ENCODERS and sequences is None:
        sequences = build_sequences(dataset)
    if config.encoder == COLLABORATIVE:
        return collaborative_item_vectors(sequences, seed=config.seed)
    if config.encoder == SEQUENTIAL:
        return sequential_item_vectors(sequences, seed=config.seed)
    texts = item_texts(dataset.items, config.text)
    return embed_texts(texts, config.encoder, cache_dir=config.cache_dir, progress=progress)


def tokenize(vectors: np.ndarray, config: SidsConfig, progress: bool = True) -> Tokenization:
    """Run the configured tokenizer on (n, d) vectors."""
    size = config.codebook_size or default_codebook_size(len(vectors))
    method = Method(config.method)
    if method is Method.RQ_KMEANS:
        return fit_rq_kmeans(
            vectors, RQKMeansConfig(levels=config.levels, codebook_size=size, seed=config.seed), progress
        )
    vae = RQVAEConfig(levels=config.levels, codebook_size=size, seed=config.seed)
    if config.epochs is not None:
        vae.epochs = config.epochs
    return fit_rq_vae(vectors, vae, progress)


def concept_entanglements(dataset: Dataset, table: SidTable) -> dict[str, list[float]]:
    """Token entanglement of the largest concepts of ``items.concepts`` (proper, non-empty subsets)."""
    concepts = dataset.items["concepts"].reset_index(drop=True).explode().dropna().astype(str)
    counts = concepts.value_counts()
    report = {}
    for name in sorted(counts.index[counts < table.n_items][:MAX_REPORTED_CONCEPTS]):
        mask = np.zeros(table.n_items, dtype=bool)
        mask[concepts.index[concepts == name].to_numpy()] = True
        report[name] = token_entanglement(table.codes, mask)
    return report


def build_sids(
    data: str | Path,
    out: str | Path,
    config: SidsConfig,
    overwrite: bool = False,
    progress: bool = True,
    sequences: SequenceData | None = None,
) -> dict:
    """Tokenise a prepared dataset into ``out``; returns the statistics written to stats.json.
    ``sequences``: see :func:`item_vectors`."""
    if config.text not in ("full", "title"):
        raise UserError(f"unknown --text {config.text!r}: choose full or title")
    if config.encoder not in (*ENCODERS, *INTERACTION_ENCODERS):
        choices = ", ".join((*ENCODERS, *INTERACTION_ENCODERS))
        raise UserError(f"unknown --encoder {config.encoder!r}: choose one of {choices}")
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    dataset = load_dataset(data)
    seconds["load"], clock = time.perf_counter() - clock, time.perf_counter()
    with claim_folder(out, overwrite, {"dataset": Path(data)}) as stage:
        vectors = item_vectors(dataset, config, progress, sequences)
        seconds["embed"], clock = time.perf_counter() - clock, time.perf_counter()
        tokenization = tokenize(vectors, config, progress)
        seconds["tokenize"], clock = time.perf_counter() - clock, time.perf_counter()
        table = SidTable.from_level_codes(
            dataset.items["item_id"].astype(str).to_numpy(), tokenization.codes, tokenization.codebook_size
        )
        seconds["sid_table"], clock = time.perf_counter() - clock, time.perf_counter()
        stats = sid_statistics(table)
        stats["entanglement"] = concept_entanglements(dataset, table)
        seconds["stats"], clock = time.perf_counter() - clock, time.perf_counter()
        table.save(stage)
        save_tokenization(stage, tokenization)
        with atomic_path(stage / VECTORS_FILE) as tmp, open(tmp, "wb") as handle:
            np.save(handle, vectors.astype(np.float32))
        seconds["write"] = time.perf_counter() - clock
        stats.update(
            method=Method(config.method).value,
            encoder=f"vectors:{config.vectors}" if config.vectors is not None else config.encoder,
            text=None if config.vectors or config.encoder in INTERACTION_ENCODERS else config.text,
            seed=config.seed,
            data=str(Path(data)),
            vector_dim=int(vectors.shape[1]),
            config={key: _plain(value) for key, value in asdict(config).items()},
            tokenizer=tokenization.info,
            seconds=seconds,
        )
        write_json(stage / STATS_FILE, stats)
    return stats


def recorded_config(sids_dir: str | Path) -> SidsConfig:
    """The settings a SID folder was built with (the ``config`` of its stats.json), so that the same
    build can run again; UserError if the folder holds no readable record of them."""
    path = Path(sids_dir) / STATS_FILE
    if not path.is_file():
        raise UserError(
            f"{sids_dir} has no {STATS_FILE} recording how its SIDs were built: copy it there from the "
            "`tracer sids` folder they came from (a model trained now carries it)"
        )
    fix = "rebuild that SID folder with `tracer sids`"
    stats = read_json_checked(path, fix)
    raw = stats.get("config") if isinstance(stats, dict) else None
    if not isinstance(raw, dict) or "encoder" not in raw:
        raise UserError(f"{path} does not record the encoder its SIDs were built with: {fix}")
    config = load_config(SidsConfig, raw, f"{path} config")
    try:
        return replace(config, method=Method(config.method))
    except ValueError:
        raise UserError(f"{path} config: unknown method {config.method!r}: {fix}") from None


def _plain(value):
    if isinstance(value, Enum):
        return value.value
    return str(value) if isinstance(value, Path) else value


def concept_entanglement_report(sids_dir: str | Path, data: str | Path, spec: str) -> dict:
    """Per-level token entanglement of the concept ``spec`` under the SID table in ``sids_dir``."""
    from tracer.data.concepts import resolve_concept

    table = SidTable.load(sids_dir)
    dataset = load_dataset(data)
    item_ids = dataset.items["item_id"].astype(str).to_numpy()
    if len(item_ids) != table.n_items or not np.array_equal(item_ids, table.item_ids):
        raise UserError(f"{sids_dir} was not built from {data} (item ids differ): pass the matching --data")
    concept = resolve_concept(dataset, spec)
    report = {
        "concept": concept.name,
        "n_concept_items": int(concept.item_mask.sum()),
        "n_items": table.n_items,
        "entanglement": token_entanglement(table.codes, concept.item_mask),
    }
    stats_path = Path(sids_dir) / STATS_FILE
    if stats_path.is_file():
        stats = read_json(stats_path)
        report.update(method=stats.get("method"), encoder=stats.get("encoder"), text=stats.get("text"))
    return report
