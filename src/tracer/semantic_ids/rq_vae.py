"""RQ-VAE tokenizer (docs/method.md §1.2; TIGER's recipe).

MLP encoder -> residual vector quantisation with L codebooks of K codewords -> MLP decoder.
Training loss per batch, with ``sg`` the stop-gradient:

    ||x - dec(z_q)||^2 + sum_l ( ||sg(r_l) - c_l||^2 + beta ||r_l - sg(c_l)||^2 ),
    r_0 = enc(x),  c_l = nearest codeword of r_l,  r_{l+1} = r_l - sg(c_l),
    z_q = r_0 + sg(sum_l c_l - r_0)        (straight-through estimator)

Codebooks start from RQ-KMeans on the initial latents; codewords unused over the whole catalogue are
restarted every ``restart_every`` epochs at random residuals of their level. After training the stored
codes are recomputed with the shared distance rule on the final latents, so the returned residuals
(in latent space) and codes are consistent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from tracer.errors import UserError
from tracer.semantic_ids.quantization import (
    Tokenization,
    codebook_usage,
    residual_quantize,
    rms_norm,
    snap_negligible_codewords,
)
from tracer.semantic_ids.rq_kmeans import RQKMeansConfig, fit_rq_kmeans


@dataclass
class RQVAEConfig:
    """Architecture and training of the RQ-VAE. ``device``: "auto" (CUDA when present), "cpu", "cuda"."""

    levels: int = 3
    codebook_size: int = 64
    latent_dim: int = 32
    hidden_dims: tuple[int, ...] = (512, 256, 128)
    epochs: int = 200
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    beta: float = 0.25
    restart_every: int = 10
    seed: int = 0
    device: str = "auto"


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(fan_in, fan_out))
        if index < len(sizes) - 2:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


class RQVAE(nn.Module):
    """Encoder, residual codebooks (L, K, latent_dim) and decoder."""

    def __init__(self, input_dim: int, config: RQVAEConfig) -> None:
        super().__init__()
        hidden = list(config.hidden_dims)
        self.encoder = _mlp([input_dim, *hidden, config.latent_dim])
        self.decoder = _mlp([config.latent_dim, *reversed(hidden), input_dim])
        self.codebooks = nn.Parameter(torch.zeros(config.levels, config.codebook_size, config.latent_dim))
        self.beta = config.beta

    def quantize(self, latent: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """latent (B, D) -> (straight-through quantised latent (B, D), codes (B, L), VQ loss scalar)."""
        residual, quantized = latent, torch.zeros_like(latent)
        codes, vq_loss = [], latent.new_zeros(())
        for codebook in self.codebooks:
            with torch.no_grad():
                index = _nearest(residual.float(), codebook.float())
            chosen = codebook[index]
            vq_loss = (
                vq_loss
                + F.mse_loss(chosen, residual.detach())
                + self.beta * F.mse_loss(residual, chosen.detach())
            )
            quantized = quantized + chosen
            residual = residual - chosen.detach()
            codes.append(index)
        straight_through = latent + (quantized - latent).detach()
        return straight_through, torch.stack(codes, dim=1), vq_loss

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x (B, d) -> (reconstruction (B, d), codes (B, L), VQ loss)."""
        quantized, codes, vq_loss = self.quantize(self.encoder(x))
        return self.decoder(quantized), codes, vq_loss


def _nearest(residual: Tensor, codebook: Tensor) -> Tensor:
    """Training-time nearest codeword (B, D), (K, D) -> (B,) (the stored codes use the exact rule)."""
    scores = 2.0 * residual @ codebook.T - (codebook * codebook).sum(-1)[None, :]
    return scores.argmax(dim=1)


def fit_rq_vae(vectors: np.ndarray, config: RQVAEConfig, progress: bool = True) -> Tokenization:
    """Train an RQ-VAE on ``vectors`` (n, d) and tokenise them.

    Returns a :class:`Tokenization` whose residuals (n, L, latent_dim) live in latent space;
    ``info`` holds the reconstruction loss before and after training, the per-epoch loss history and
    the per-level codebook usage. Deterministic under ``config.seed`` on CPU.
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(vectors)
    if config.codebook_size > n:
        raise UserError(f"codebook size K={config.codebook_size} exceeds the number of items ({n})")
    device = _resolve_device(config.device)
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        generator = torch.Generator().manual_seed(config.seed)
        data = torch.from_numpy(vectors).to(device)
        model = RQVAE(vectors.shape[1], config).to(device)
        _kmeans_init(model, data, config)
        initial_loss = reconstruction_loss(model, data)
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        history, restarts = [], 0
        for epoch in tqdm(range(config.epochs), desc="rq-vae epochs", disable=not progress):
            history.append(_train_epoch(model, optimizer, data, config, generator, device))
            is_last = epoch == config.epochs - 1
            if config.restart_every > 0 and (epoch + 1) % config.restart_every == 0 and not is_last:
                restarts += restart_dead_codes(model, data, generator)
        model.eval()
        latents = _encode(model, data).cpu().numpy()
        raw_codebooks = model.codebooks.detach().float().cpu().numpy()
        codebooks = np.stack([snap_negligible_codewords(book, rms_norm(latents)) for book in raw_codebooks])
        codes, residuals = residual_quantize(latents, codebooks)
        final_loss = reconstruction_loss(model, data, torch.from_numpy(codes).to(device))
    usage = codebook_usage(codes, config.codebook_size)
    info = {
        "method": "rq-vae",
        "levels": config.levels,
        "codebook_size": config.codebook_size,
        "latent_dim": config.latent_dim,
        "epochs": config.epochs,
        "seed": config.seed,
        "initial_reconstruction_loss": initial_loss,
        "reconstruction_loss": final_loss,
        "loss_history": history,
        "dead_code_restarts": restarts,
        "codebook_usage": (usage > 0).mean(axis=1).tolist(),
        "device": str(device),
        "seconds": time.perf_counter() - start,
    }
    return Tokenization(codes=codes, codebooks=codebooks, residuals=residuals, info=info)


def reconstruction_loss(model: RQVAE, data: Tensor, codes: Tensor | None = None) -> float:
    """Mean squared reconstruction error per vector (summed over dimensions) of ``data`` (n, d).

    With ``codes`` (n, L) the decoder input is the sum of those codewords; otherwise the model's own
    nearest-codeword quantisation of the encoder output.
    """
    model.eval()
    with torch.no_grad():
        if codes is None:
            reconstruction, _, _ = model(data)
        else:
            levels = torch.arange(codes.shape[1], device=codes.device)
            reconstruction = model.decoder(model.codebooks[levels, codes].sum(dim=1))
        loss = ((reconstruction - data) ** 2).sum(dim=1).mean()
    model.train()
    return float(loss)


def _train_epoch(model: RQVAE, optimizer, data: Tensor, config: RQVAEConfig, generator, device) -> float:
    """One shuffled pass; returns the mean reconstruction loss of its batches."""
    model.train()
    order = torch.randperm(len(data), generator=generator).to(device)
    total, batches = 0.0, 0
    for batch_index in order.split(config.batch_size):
        batch = data[batch_index]
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            reconstruction, _, vq_loss = model(batch)
        recon = ((reconstruction.float() - batch) ** 2).sum(dim=1).mean()
        loss = recon + vq_loss.float()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(recon.detach())
        batches += 1
    return total / max(batches, 1)


def _encode(model: RQVAE, data: Tensor) -> Tensor:
    with torch.no_grad():
        return torch.cat([model.encoder(chunk) for chunk in data.split(65536)]).float()


def _kmeans_init(model: RQVAE, data: Tensor, config: RQVAEConfig) -> None:
    """Codebooks <- RQ-KMeans of the initial latents (TIGER's k-means initialisation)."""
    latents = _encode(model, data).cpu().numpy()
    kmeans = RQKMeansConfig(
        levels=config.levels, codebook_size=config.codebook_size, seed=config.seed, n_init=1
    )
    init = fit_rq_kmeans(latents, kmeans, progress=False)
    with torch.no_grad():
        model.codebooks.copy_(torch.from_numpy(init.codebooks))


def restart_dead_codes(model: RQVAE, data: Tensor, generator: torch.Generator) -> int:
    """Move every codeword that no item uses onto a random item's residual at its level.

    Returns the number of codewords restarted.
    """
    latents = _encode(model, data).cpu().numpy()
    codebooks = model.codebooks.detach().float().cpu().numpy()
    codes, residuals = residual_quantize(latents, codebooks)
    usage = codebook_usage(codes, codebooks.shape[1])
    restarted = 0
    with torch.no_grad():
        for level in range(codebooks.shape[0]):
            dead = np.flatnonzero(usage[level] == 0)
            if len(dead) == 0:
                continue
            picks = torch.randint(len(data), (len(dead),), generator=generator).numpy()
            fresh = torch.from_numpy(residuals[picks, level]).to(model.codebooks.device)
            model.codebooks[level, torch.from_numpy(dead).to(model.codebooks.device)] = fresh
            restarted += len(dead)
    return restarted


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise UserError(f"unknown device {name!r}: use auto, cpu or cuda")
    return torch.device(name)
