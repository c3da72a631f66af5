"""RQ-VAE: training lowers the reconstruction loss, codes agree with the soft assignment, dead codes
restart onto data, and a seed fixes everything."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tracer.semantic_ids.quantization import codebook_usage, residual_quantize, soft_assignment
from tracer.semantic_ids.rq_vae import RQVAE, RQVAEConfig, fit_rq_vae, restart_dead_codes

SMALL = dict(levels=2, codebook_size=8, latent_dim=6, hidden_dims=(32,), batch_size=64, lr=3e-3)
SMALL["restart_every"] = 5


def mixture(n: int = 240, dim: int = 10, clusters: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    return (centres[rng.integers(0, clusters, n)] + 0.1 * rng.normal(size=(n, dim))).astype(np.float32)


@pytest.fixture(scope="module")
def trained():
    vectors = mixture()
    return vectors, fit_rq_vae(vectors, RQVAEConfig(epochs=20, seed=5, **SMALL), progress=False)


def test_training_lowers_reconstruction_loss(trained):
    _, tok = trained
    info = tok.info
    assert info["reconstruction_loss"] < 0.5 * info["initial_reconstruction_loss"]
    history = info["loss_history"]
    assert len(history) == 20 and np.mean(history[-3:]) < 0.6 * np.mean(history[:3])


def test_codes_residuals_and_soft_assignment_agree(trained):
    _, tok = trained
    assert tok.codes.shape == (240, 2) and tok.codebooks.shape == (2, 8, 6)
    assert tok.residuals.shape == (240, 2, 6)
    codes, residuals = residual_quantize(tok.residuals[:, 0], tok.codebooks)
    np.testing.assert_array_equal(codes, tok.codes)
    np.testing.assert_array_equal(residuals, tok.residuals)
    np.testing.assert_array_equal(soft_assignment(tok.residuals, tok.codebooks, 0.005).argmax(-1), tok.codes)


def test_reported_usage_matches_codes(trained):
    _, tok = trained
    usage = (codebook_usage(tok.codes, 8) > 0).mean(axis=1)
    np.testing.assert_allclose(tok.info["codebook_usage"], usage)


def test_same_seed_same_result_and_global_rng_untouched(trained):
    vectors, tok = trained
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    again = fit_rq_vae(vectors, RQVAEConfig(epochs=20, seed=5, **SMALL), progress=False)
    np.testing.assert_array_equal(again.codes, tok.codes)
    np.testing.assert_array_equal(again.codebooks, tok.codebooks)
    np.testing.assert_array_equal(again.residuals, tok.residuals)
    torch.testing.assert_close(torch.rand(3), before)


def test_dead_codes_restart_onto_residuals_of_their_level():
    vectors = mixture(n=64)
    config = RQVAEConfig(**SMALL)
    model = RQVAE(10, config)
    with torch.no_grad():
        model.codebooks.fill_(1e3)  # every codeword far away: only codeword 0 is ever chosen
        model.codebooks[:, 0] = 0.0
    data = torch.from_numpy(vectors)
    restarted = restart_dead_codes(model, data, torch.Generator().manual_seed(0))
    assert restarted == 2 * 7
    with torch.no_grad():
        latents = model.encoder(data)
    first_level = model.codebooks[0, 1:].detach()
    # restarted level-0 codewords are latents of real items (the residual entering level 0)
    matches = (first_level[:, None, :] - latents[None]).abs().amax(-1).min(dim=1).values
    assert torch.all(matches < 1e-5)
