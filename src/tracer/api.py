"""The Python API: one function per pipeline stage, the same functions the ``tracer`` commands call.

Each stage writes an artifact folder and returns its path, so the calls chain (README, "Python quick
start"; docs/method.md §9). Bad input raises :class:`tracer.errors.UserError` with a one-line message.
"""

from __future__ import annotations

from pathlib import Path

from tracer.data.loaders import LoaderOptions, load_raw
from tracer.data.pipeline import PrepareConfig, write_prepared
from tracer.evaluation.erasure import ErasureEvalConfig, evaluate_erasure
from tracer.semantic_ids.build import Method, SidsConfig
from tracer.semantic_ids.build import build_sids as build_sid_table
from tracer.training.config import load_preset
from tracer.training.loop import train as train_run
from tracer.unlearning.runner import EraseRequest
from tracer.unlearning.runner import erase as erase_run

__all__ = ["build_sids", "erase", "evaluate", "prepare", "train"]


def prepare(dataset: str, out: str | Path, path: str | Path | None = None, kcore: int | None = None) -> Path:
    """Load ``dataset`` (``ml-100k``, ``ml-1m``, ``amazon``, ...; ``path`` for files you give), order and
    split it leave-one-out (docs/method.md §2), and write the prepared folder ``out``; returns ``out``."""
    options = LoaderOptions(path=None if path is None else Path(path))
    write_prepared(load_raw(dataset, options), PrepareConfig(kcore=kcore), Path(out))
    return Path(out)


def build_sids(
    data_dir: str | Path,
    out: str | Path,
    method: str = "rq-kmeans",
    encoder: str = "use",
    levels: int = 3,
    codebook_size: int | None = None,
    seed: int = 0,
) -> Path:
    """Embed the items of ``data_dir`` with ``encoder`` and quantise them into semantic IDs of ``levels``
    codes plus a dedup digit (docs/method.md §1.1-1.2); writes ``out`` and returns it."""
    config = SidsConfig(
        method=Method(method), levels=levels, codebook_size=codebook_size, encoder=encoder, seed=seed
    )
    build_sid_table(data_dir, out, config, progress=False)
    return Path(out)


def train(
    data_dir: str | Path,
    sids_dir: str | Path,
    out: str | Path,
    preset: str = "ml-100k",
    seed: int | None = None,
    max_epochs: int | None = None,
) -> Path:
    """Train the backbone of ``preset`` (a name in ``configs/`` or a YAML path) on ``data_dir`` with the
    SIDs of ``sids_dir`` (docs/method.md §1.3); writes the model folder ``out`` and returns it."""
    config = load_preset(preset).replace(seed=seed, max_epochs=max_epochs)
    train_run(config, data_dir, sids_dir, out, show_progress=False)
    return Path(out)


def erase(
    model_dir: str | Path,
    data_dir: str | Path,
    concept: str,
    out: str | Path,
    method: str = "tracer",
    settings: dict | None = None,
    from_root: bool = False,
) -> Path:
    """Erase ``concept`` (e.g. ``"Horror"``; docs/method.md §3) from the model at ``model_dir`` with
    ``method`` (``tracer``, a baseline or an ablation; §4-5), its YAML defaults updated by ``settings``.
    Writes the erased model folder ``out`` (the parent is never changed) and returns it. From an erased
    model the request forgets the union of its chain and ``concept`` (§8.13); ``from_root`` starts that
    erasure from the model the chain began with instead of ``model_dir``'s weights."""
    request = EraseRequest(
        model_dir=Path(model_dir),
        data_dir=Path(data_dir),
        concept=concept,
        method=method,
        out=Path(out),
        overrides=settings,
        from_root=from_root,
    )
    erase_run(request)
    return Path(out)


def evaluate(
    model_dir: str | Path, data_dir: str | Path, concept: str, split: str = "test", mass_users: int = 200
) -> dict:
    """The headline erasure metrics of a model for ``concept`` on ``split`` (docs/method.md §6): a dict
    with ``retain_ndcg@10``, ``retain_recall@10``, ``forget_recall@10``, ``forget_ndcg@10``,
    ``exposure@10``, ``exposure_fans@10``, ``concept_mass`` and ``median_concept_rank``."""
    metrics, _ = evaluate_erasure(
        model_dir, data_dir, concept, ErasureEvalConfig(split=split, mass_users=mass_users)
    )
    return metrics["headline"]
