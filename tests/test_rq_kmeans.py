"""RQ-KMeans and the shared quantisation rule: codes are the nearest centroid of each residual, the
soft assignment at phi = 0 reproduces them exactly, and fits are deterministic under a seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tracer.errors import UserError
from tracer.semantic_ids.quantization import (
    default_codebook_size,
    nearest_codes,
    residual_quantize,
    soft_assignment,
)
from tracer.semantic_ids.rq_kmeans import RQKMeansConfig, fit_rq_kmeans
from tracer.semantic_ids.sid_table import SidTable


def mixture(n: int = 400, dim: int = 12, clusters: int = 15, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    return (centres[rng.integers(0, clusters, n)] + 0.2 * rng.normal(size=(n, dim))).astype(np.float32)


def brute_distances(residuals: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """(..., d), (K, d) -> (..., K) squared distances by the direct formula in float64."""
    diff = residuals[..., None, :].astype(np.float64) - codebook.astype(np.float64)
    return (diff**2).sum(-1)


@pytest.fixture(scope="module")
def fitted():
    vectors = mixture()
    return vectors, fit_rq_kmeans(vectors, RQKMeansConfig(levels=3, codebook_size=16, seed=3), progress=False)


def test_shapes_and_residual_chain(fitted):
    vectors, tok = fitted
    assert tok.codes.shape == (400, 3) and tok.codes.dtype == np.int64
    assert tok.codebooks.shape == (3, 16, 12) and tok.residuals.shape == (400, 3, 12)
    np.testing.assert_array_equal(tok.residuals[:, 0], vectors)
    for level in range(2):
        expected = tok.residuals[:, level] - tok.codebooks[level][tok.codes[:, level]]
        np.testing.assert_array_equal(tok.residuals[:, level + 1], expected)


def test_codes_are_nearest_centroid_of_each_residual(fitted):
    _, tok = fitted
    for level in range(3):
        brute = brute_distances(tok.residuals[:, level], tok.codebooks[level]).argmin(axis=1)
        np.testing.assert_array_equal(tok.codes[:, level], brute)
    codes, residuals = residual_quantize(tok.residuals[:, 0], tok.codebooks)
    np.testing.assert_array_equal(codes, tok.codes)
    np.testing.assert_array_equal(residuals, tok.residuals)


@pytest.mark.parametrize("tau", [0.005, 1.0, 50.0])
def test_soft_assignment_at_phi_zero_reproduces_codes(fitted, tau):
    _, tok = fitted
    for residuals in (tok.residuals, torch.from_numpy(tok.residuals)):  # numpy and torch inputs
        probs = soft_assignment(residuals, tok.codebooks, tau)
        assert probs.shape == (400, 3, 16)
        torch.testing.assert_close(probs.sum(-1), torch.ones(400, 3, dtype=probs.dtype))
        np.testing.assert_array_equal(probs.argmax(-1).numpy(), tok.codes)
    zeros = torch.zeros(400, 3, 16)
    with_phi = soft_assignment(tok.residuals, tok.codebooks, tau, zeros)
    np.testing.assert_array_equal(with_phi.argmax(-1), tok.codes)


def test_soft_assignment_matches_equation_and_phi_has_gradients(fitted):
    _, tok = fitted
    residuals, tau = tok.residuals[:5], 0.7
    phi = torch.zeros(5, 3, 16, requires_grad=True)
    probs = soft_assignment(residuals, tok.codebooks, tau, phi)
    dist = np.stack([brute_distances(residuals[:, lv], tok.codebooks[lv]) for lv in range(3)], axis=1)
    logits = -dist / tau
    expected = np.exp(logits - logits.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    np.testing.assert_allclose(probs.detach().numpy(), expected, rtol=1e-9, atol=1e-12)
    # raising phi on codeword 7 of item 0, level 1 raises its probability (gradient of log q is 1 - q > 0)
    torch.log(probs[0, 1, 7]).backward()
    assert phi.grad[0, 1, 7] > 0 and torch.all(phi.grad[0, 1, torch.arange(16) != 7] <= 0)
    moved = torch.zeros(5, 3, 16)
    moved[0, 1, 7] = 1e6
    assert int(soft_assignment(residuals, tok.codebooks, tau, moved)[0, 1].argmax()) == 7


def test_same_seed_same_codes_and_codebooks():
    vectors = mixture(seed=1)
    config = RQKMeansConfig(levels=2, codebook_size=8, seed=11)
    first = fit_rq_kmeans(vectors, config, progress=False)
    second = fit_rq_kmeans(vectors, config, progress=False)
    np.testing.assert_array_equal(first.codes, second.codes)
    np.testing.assert_array_equal(first.codebooks, second.codebooks)


def test_many_duplicate_vectors_still_give_unique_sids_and_consistent_codes():
    base = mixture(n=6, dim=8, clusters=3, seed=2)
    vectors = np.repeat(base, 50, axis=0)  # 300 items, 6 distinct vectors, K = 16 > distinct points
    tok = fit_rq_kmeans(vectors, RQKMeansConfig(levels=3, codebook_size=16, seed=0), progress=False)
    np.testing.assert_array_equal(soft_assignment(tok.residuals, tok.codebooks, 0.005).argmax(-1), tok.codes)
    table = SidTable.from_level_codes([f"i{k}" for k in range(300)], tok.codes, 16)
    assert len(np.unique(table.codes, axis=0)) == 300
    assert table.codes[:, -1].max() >= 49  # 50 copies of a vector share their L codes


def test_duplicate_centroids_break_ties_to_the_first_index():
    codebook = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    points = np.array([[0.1, 0.9], [0.9, 0.1], [0.5, 0.5]], dtype=np.float32)
    np.testing.assert_array_equal(nearest_codes(points, codebook), [1, 0, 0])
    residuals = np.stack([points, points], axis=1)
    probs = soft_assignment(residuals, np.stack([codebook, codebook]), tau=0.005)
    np.testing.assert_array_equal(probs.argmax(-1)[:, 0], [1, 0, 0])


def test_codebook_larger_than_catalogue_is_a_user_error():
    with pytest.raises(UserError, match="exceeds the number of items"):
        fit_rq_kmeans(mixture(n=10), RQKMeansConfig(codebook_size=16), progress=False)


def test_default_codebook_size_rule():
    assert default_codebook_size(1682) == 64  # ML-100k
    assert default_codebook_size(3883) == 128  # ML-1M
    assert default_codebook_size(12_101) == 256  # Amazon Beauty 5-core
    assert default_codebook_size(1_000_000) == 256
    assert default_codebook_size(20) == 16
    assert default_codebook_size(10) == 10
