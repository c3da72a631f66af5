"""Residual quantisation helpers shared by both tokenizers and by TRACER (docs/method.md §1.2, §4.2).

One distance rule decides every code in the project, so that stored codes, the k-means assignment and
the argmax of the soft assignment at ``phi = 0`` always agree exactly:

- squared Euclidean distances are computed in float64 with the fast expansion
  ``||r||^2 - 2 r.c + ||c||^2``;
- rows whose two smallest distances lie within the expansion's rounding error (near ties, e.g. exact
  duplicate centroids) are recomputed with the direct formula ``sum_d (r_d - c_d)^2``;
- the code is the first index of the minimum (numpy and torch both break ties that way).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save_file
from torch import Tensor

from tracer.errors import UserError
from tracer.io import atomic_path

TOKENIZER_FILE = "tokenizer.safetensors"
# Relative rounding error allowed for the float64 expansion before a row is recomputed directly.
_NEAR_TIE_RELATIVE = 1e-9
_CHUNK_ROWS = 16384
# Codewords shorter than this share of the data's RMS norm are rounding noise (snapped to zero).
NEGLIGIBLE_RELATIVE = 1e-6
# Elements of the (rows, K, d) difference tensor built at once by the direct formula.
_DIRECT_ELEMENTS = 1 << 22


@dataclass
class Tokenization:
    """What a tokenizer produces.

    ``codes``: int64 (n, L), ``codes[i, l]`` = argmin_k ||residuals[i, l] - codebooks[l, k]||^2.
    ``codebooks``: float32 (L, K, d). ``residuals``: float32 (n, L, d), ``residuals[:, l]`` is the
    residual entering level l (``residuals[:, 0]`` is the quantised vector itself: the input vector for
    RQ-KMeans, the latent for RQ-VAE). ``info``: JSON-serialisable facts about the fit.
    """

    codes: np.ndarray
    codebooks: np.ndarray
    residuals: np.ndarray
    info: dict = field(default_factory=dict)

    @property
    def levels(self) -> int:
        return self.codebooks.shape[0]

    @property
    def codebook_size(self) -> int:
        return self.codebooks.shape[1]


def default_codebook_size(n_items: int) -> int:
    """K for a catalogue of ``n_items`` when the user gives none: the power of two nearest (in log
    scale) to ``2 * sqrt(n_items)``, clipped to [16, 256] and to ``n_items``.

    Small catalogues need small codebooks: with K = 256 on 1.7k items the deep residuals are almost
    zero and crowd a few codes, so collisions go *up* (docs/method.md §1.2). The rule gives K = 64 for
    ML-100k (1,682 items), K = 128 for ML-1M (3,883) and TIGER's K = 256 from about 8.2k items (the
    Amazon 5-core catalogues of 12k-18k items).
    """
    if n_items < 2:
        raise ValueError(f"need at least 2 items, got {n_items}")
    target = 2.0 * math.sqrt(n_items)
    size = 2 ** round(math.log2(target))
    return int(min(max(size, 16), 256, n_items))


def squared_distances(residuals: Tensor, codebook: Tensor) -> Tensor:
    """Squared distances (n, d) x (K, d) -> float64 (n, K), exact enough to decide every argmin.

    Accepts any float dtype; works without autograd (distances of frozen tensors).
    """
    return torch.cat([block for block in _distance_blocks(residuals, codebook)])


def _distance_blocks(residuals: Tensor, codebook: Tensor) -> Iterator[Tensor]:
    """float64 distance blocks (<= _CHUNK_ROWS, K) of consecutive rows, near ties recomputed directly."""
    with torch.no_grad():
        c = codebook.detach().to(device=residuals.device, dtype=torch.float64)
        c_norm = (c * c).sum(-1)
        rows_per_step = max(1, _DIRECT_ELEMENTS // (c.shape[0] * c.shape[1]))
        for block in residuals.detach().split(_CHUNK_ROWS):
            block = block.to(torch.float64)
            r_norm = (block * block).sum(-1)
            dist = (r_norm[:, None] - 2.0 * (block @ c.T) + c_norm[None, :]).clamp_min_(0.0)
            if c.shape[0] > 1:
                two = dist.topk(2, dim=1, largest=False).values
                tolerance = _NEAR_TIE_RELATIVE * (r_norm + c_norm.max()) + 1e-300
                near = torch.nonzero(two[:, 1] - two[:, 0] <= tolerance).flatten()
                for part in near.split(rows_per_step):
                    dist[part] = ((block[part, None, :] - c[None, :, :]) ** 2).sum(-1)
            yield dist


def snap_negligible_codewords(codebook: np.ndarray, scale: float) -> np.ndarray:
    """Set codewords (K, d) shorter than ``NEGLIGIBLE_RELATIVE * scale`` to exactly zero.

    Where a level has nothing left to quantise (duplicate items, perfectly reconstructed residuals),
    k-means returns centroids made of rounding noise (~1e-14) whose distances differ by ~1e-27: no
    softmax at any temperature can tell them apart. Exact zero codewords tie exactly instead, so the
    first one wins both the stored argmin and the soft assignment's argmax. ``scale``: the RMS norm
    of the tokenised vectors.
    """
    codebook = codebook.copy()
    codebook[np.linalg.norm(codebook.astype(np.float64), axis=1) < NEGLIGIBLE_RELATIVE * scale] = 0.0
    return codebook


def rms_norm(vectors: np.ndarray) -> float:
    """sqrt(mean ||v||^2) of (n, d) vectors."""
    return float(np.sqrt(np.mean(np.sum(np.asarray(vectors, dtype=np.float64) ** 2, axis=1))))


def nearest_codes(vectors: np.ndarray | Tensor, codebook: np.ndarray | Tensor) -> np.ndarray:
    """Index of the nearest codeword of every row: (n, d), (K, d) -> int64 (n,), block by block."""
    blocks = _distance_blocks(torch.as_tensor(vectors), torch.as_tensor(codebook))
    return torch.cat([block.argmin(dim=1) for block in blocks]).cpu().numpy().astype(np.int64)


def residual_quantize(vectors: np.ndarray, codebooks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Greedy residual quantisation of (n, d) vectors with (L, K, d) codebooks.

    Returns codes int64 (n, L) and residuals float32 (n, L, d), ``residuals[:, l]`` entering level l.
    The residual chain is computed in float32 exactly as stored, so re-quantising the stored residuals
    gives the stored codes.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    codebooks = np.asarray(codebooks, dtype=np.float32)
    n, levels = vectors.shape[0], codebooks.shape[0]
    codes = np.empty((n, levels), dtype=np.int64)
    residuals = np.empty((n, levels, vectors.shape[1]), dtype=np.float32)
    current = vectors.copy()
    for level in range(levels):
        residuals[:, level] = current
        codes[:, level] = nearest_codes(current, codebooks[level])
        current = current - codebooks[level][codes[:, level]]
    return codes, residuals


def soft_assignment(
    residuals: np.ndarray | Tensor,
    codebooks: np.ndarray | Tensor,
    tau: float,
    phi: Tensor | np.ndarray | None = None,
) -> Tensor:
    """docs/method.md §4.2, Eq. 5/6: ``q[i, l, k] = softmax_k((-||r_i^l - c_k^l||^2 + phi[i, l, k]) / tau)``.

    residuals (n, L, d), codebooks (L, K, d), phi (n, L, K) or None -> probabilities float64
    (n, L, K). Distances are constants (codebooks and residuals are frozen); gradients flow into
    ``phi`` when it requires them. The result is float64 so that, at ``phi = 0``, its argmax over k
    is exactly the stored code even for a small ``tau`` (0.005); cast it after taking the argmax.
    """
    residuals = torch.as_tensor(residuals)
    codebooks = torch.as_tensor(codebooks, device=residuals.device)
    if tau <= 0:
        raise ValueError(f"tau must be positive, got {tau}")
    n, levels, _ = residuals.shape
    if codebooks.shape[0] != levels or codebooks.shape[2] != residuals.shape[2]:
        raise ValueError(
            f"codebooks {tuple(codebooks.shape)} do not match residuals {tuple(residuals.shape)}"
        )
    distances = torch.stack(
        [squared_distances(residuals[:, level], codebooks[level]) for level in range(levels)], dim=1
    )  # (n, L, K)
    logits = -distances
    if phi is not None:
        phi = torch.as_tensor(phi, device=residuals.device)
        if phi.shape != distances.shape:
            raise ValueError(f"phi must have shape {tuple(distances.shape)}, got {tuple(phi.shape)}")
        logits = logits + phi.to(torch.float64)
    return torch.softmax(logits / tau, dim=-1)


def code_offsets(
    residuals: np.ndarray | Tensor, codebooks: np.ndarray | Tensor, codes: np.ndarray | Tensor
) -> Tensor:
    """Logit offsets (n, L, K) float64 under which the soft assignment's argmax is ``codes`` (n, L).

    Zero where the nearest codeword already is the code. Elsewhere the code's logit is raised above the
    best one by the margin the best had over the runner-up (at least 1e-6), so an artifact whose codes
    were moved by an earlier erasure starts a new one from its own codes (docs/method.md, TRACER)."""
    residuals = torch.as_tensor(residuals)
    codebooks = torch.as_tensor(codebooks, device=residuals.device)
    codes = torch.as_tensor(codes, device=residuals.device, dtype=torch.long)
    logits = -torch.stack(
        [squared_distances(residuals[:, level], codebooks[level]) for level in range(codes.shape[1])], dim=1
    ).to(torch.float64)  # (n, L, K)
    top = logits.topk(2, dim=-1).values  # (n, L, 2)
    own = logits.gather(-1, codes[..., None]).squeeze(-1)  # (n, L)
    raise_by = (top[..., 0] - own + (top[..., 0] - top[..., 1]).clamp_min(1e-6)) * (own < top[..., 0])
    return torch.zeros_like(logits).scatter(-1, codes[..., None], raise_by[..., None])


def codebook_usage(codes: np.ndarray, codebook_size: int) -> np.ndarray:
    """Code counts per level: codes (n, L) -> int64 (L, K)."""
    return np.stack(
        [np.bincount(codes[:, level], minlength=codebook_size) for level in range(codes.shape[1])]
    )


def save_tokenization(folder: str | Path, tokenization: Tokenization) -> Path:
    """Write ``folder/tokenizer.safetensors`` (codes, codebooks, residuals; info as JSON metadata)."""
    path = Path(folder) / TOKENIZER_FILE
    tensors = {
        "codes": np.ascontiguousarray(tokenization.codes, dtype=np.int64),
        "codebooks": np.ascontiguousarray(tokenization.codebooks, dtype=np.float32),
        "residuals": np.ascontiguousarray(tokenization.residuals, dtype=np.float32),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"info": json.dumps(tokenization.info, default=_plain)})
    return path


def load_tokenization(folder: str | Path) -> Tokenization:
    """Read what :func:`save_tokenization` wrote."""
    path = Path(folder) / TOKENIZER_FILE
    if not path.is_file():
        raise UserError(f"{path} not found: run `tracer sids DATA --out {folder}` first")
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise UserError(f"{path} is unreadable ({error}): rebuild it with `tracer sids`") from None
    missing = [name for name in ("codes", "codebooks", "residuals") if name not in tensors]
    if missing:
        raise UserError(f"{path} lacks {', '.join(missing)}: rebuild it with `tracer sids`")
    return Tokenization(
        codes=tensors["codes"],
        codebooks=tensors["codebooks"],
        residuals=tensors["residuals"],
        info=json.loads(metadata.get("info", "{}")),
    )


def _plain(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
