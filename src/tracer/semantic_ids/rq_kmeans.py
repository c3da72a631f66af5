"""RQ-KMeans tokenizer (docs/method.md §1.2): k-means on the vectors, subtract the centroid,
k-means on the residual, and so on for L levels.

Every level's codes are recomputed as the nearest centroid of each residual after the fit (with the
shared distance rule of :mod:`tracer.semantic_ids.quantization`), so stored codes, residuals and
codebooks are always consistent, whatever labels k-means itself reported. Centroids made of rounding
noise are snapped to zero (:func:`~tracer.semantic_ids.quantization.snap_negligible_codewords`).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from tracer.errors import UserError
from tracer.semantic_ids.quantization import (
    Tokenization,
    codebook_usage,
    nearest_codes,
    rms_norm,
    snap_negligible_codewords,
)


@dataclass
class RQKMeansConfig:
    """``levels`` L and ``codebook_size`` K; ``minibatch_above``: item count from which
    MiniBatchKMeans replaces full KMeans (full Lloyd iterations over a million vectors are too slow on
    two cores)."""

    levels: int = 3
    codebook_size: int = 64
    seed: int = 0
    n_init: int = 3
    max_iter: int = 300
    minibatch_above: int = 100_000
    minibatch_size: int = 8192
    minibatch_max_iter: int = 50


def fit_rq_kmeans(vectors: np.ndarray, config: RQKMeansConfig, progress: bool = True) -> Tokenization:
    """Fit L levels of k-means on the residual chain of ``vectors`` (n, d).

    Returns a :class:`Tokenization` with codes (n, L), codebooks (L, K, d) and the residuals
    (n, L, d) entering each level. Deterministic under ``config.seed``.
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    levels, size = config.levels, config.codebook_size
    if levels < 1 or size < 2:
        raise UserError(f"need levels >= 1 and codebook size >= 2, got L={levels}, K={size}")
    if size > n:
        raise UserError(f"codebook size K={size} exceeds the number of items ({n}): choose K <= {n}")
    codebooks = np.empty((levels, size, dim), dtype=np.float32)
    codes = np.empty((n, levels), dtype=np.int64)
    residuals = np.empty((n, levels, dim), dtype=np.float32)
    level_seconds, level_mse = [], []
    current = vectors.copy()
    scale = rms_norm(vectors)
    for level in tqdm(range(levels), desc="rq-kmeans levels", disable=not progress):
        start = time.perf_counter()
        residuals[:, level] = current
        centroids = _fit_centroids(current, size, config, seed=config.seed + level)
        codebooks[level] = snap_negligible_codewords(centroids, scale)
        codes[:, level] = nearest_codes(current, codebooks[level])
        current = current - codebooks[level][codes[:, level]]
        level_mse.append(float(np.mean(np.sum(current.astype(np.float64) ** 2, axis=1))))
        level_seconds.append(time.perf_counter() - start)
    usage = codebook_usage(codes, size)
    info = {
        "method": "rq-kmeans",
        "algorithm": "minibatch-kmeans" if n > config.minibatch_above else "kmeans",
        "levels": levels,
        "codebook_size": size,
        "seed": config.seed,
        "residual_mse_after_level": level_mse,
        "codebook_usage": (usage > 0).mean(axis=1).tolist(),
        "seconds_per_level": level_seconds,
    }
    return Tokenization(codes=codes, codebooks=codebooks, residuals=residuals, info=info)


def _fit_centroids(points: np.ndarray, size: int, config: RQKMeansConfig, seed: int) -> np.ndarray:
    """K centroids (K, d) float32 of ``points`` (n, d); duplicate centroids are allowed when there are
    fewer distinct points than K (k-means then warns, which is expected here and silenced)."""
    # scikit-learn loads in ~0.9 s: imported here, not with the CLI
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.exceptions import ConvergenceWarning

    if len(points) > config.minibatch_above:
        model = MiniBatchKMeans(
            n_clusters=size,
            batch_size=config.minibatch_size,
            n_init=config.n_init,
            max_iter=config.minibatch_max_iter,
            random_state=seed,
        )
    else:
        model = KMeans(n_clusters=size, n_init=config.n_init, max_iter=config.max_iter, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(points)
    return model.cluster_centers_.astype(np.float32)
