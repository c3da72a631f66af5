"""SASRec: self-attentive sequential recommendation over item ids (Kang & McAuley, ICDM 2018).

The item-id baseline a generative recommender has to beat (docs/method.md §1.5). Input: an item
embedding (scaled by sqrt(d), as in the paper) plus a learned positional embedding, then causal
self-attention blocks (``nn.Linear`` + ``F.scaled_dot_product_attention``, pre- or post-norm, dropout),
then a dot product of each hidden state with the whole item embedding table (tied input/output).

Histories are int64 item-index tensors (B, T), **left-padded with PAD_ITEM (-1)**, most recent item last.
Positions are counted from each row's first real item, and padding is masked out of every attention
row, so left padding never changes the output at a real position. Position t only sees items <= t.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save
from torch import Tensor, nn

from tracer.io import atomic_path, read_json, write_json
from tracer.model.base import PAD_ITEM

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


@dataclass
class SASRecConfig:
    """Architecture of a SASRec model (``n_items`` is set from the data)."""

    n_items: int = 0
    hidden_size: int = 128
    n_layers: int = 2
    n_heads: int = 2
    ffn_multiplier: int = 4
    dropout: float = 0.5
    attention_dropout: float = 0.0
    max_len: int = 50
    norm_first: bool = True

    def validate(self) -> None:
        if self.n_items < 1:
            raise ValueError(f"n_items must be >= 1, got {self.n_items}")
        if self.hidden_size % self.n_heads != 0:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by n_heads {self.n_heads}")
        if not (0.0 <= self.dropout < 1.0 and 0.0 <= self.attention_dropout < 1.0):
            raise ValueError(f"dropouts must be in [0, 1), got {self.dropout}, {self.attention_dropout}")
        if self.max_len < 1 or self.n_layers < 1:
            raise ValueError("max_len and n_layers must be >= 1")


class CausalSelfAttentionBlock(nn.Module):
    """One Transformer block: multi-head self-attention under a given mask, then a feed-forward net."""

    def __init__(
        self,
        hidden_size: int,
        n_heads: int,
        ffn_size: int,
        dropout: float,
        attention_dropout: float,
        norm_first: bool,
    ):
        super().__init__()
        self.n_heads = n_heads
        self.norm_first = norm_first
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.attention_out = nn.Linear(hidden_size, hidden_size)
        self.feed_forward = nn.Sequential(
            nn.Linear(hidden_size, ffn_size),
            nn.GELU(),
            nn.Linear(ffn_size, hidden_size),
        )
        self.attention_norm = nn.LayerNorm(hidden_size)
        self.feed_forward_norm = nn.LayerNorm(hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.attention_dropout = attention_dropout

    def attend(self, x: Tensor, allowed: Tensor) -> Tensor:
        """x (B, T, d), allowed (B, 1, T, T) bool (True = query may attend to key) -> (B, T, d)."""
        batch, length, hidden = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.n_heads, hidden // self.n_heads).unbind(2)
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            attn_mask=allowed,
            dropout_p=self.attention_dropout if self.training else 0.0,
        )  # (B, heads, T, d_head)
        return self.attention_out(out.transpose(1, 2).reshape(batch, length, hidden))

    def forward(self, x: Tensor, allowed: Tensor) -> Tensor:
        if self.norm_first:
            x = x + self.dropout(self.attend(self.attention_norm(x), allowed))
            return x + self.dropout(self.feed_forward(self.feed_forward_norm(x)))
        x = self.attention_norm(x + self.dropout(self.attend(x, allowed)))
        return self.feed_forward_norm(x + self.dropout(self.feed_forward(x)))


class SASRec(nn.Module):
    """Item-id SASRec scoring the full catalogue.

    Row 0 of ``item_embedding`` is the padding row; item index i lives in row i + 1.
    """

    def __init__(self, config: SASRecConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        hidden = config.hidden_size
        self.item_embedding = nn.Embedding(config.n_items + 1, hidden, padding_idx=0)
        self.position_embedding = nn.Embedding(config.max_len, hidden)
        self.input_dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            CausalSelfAttentionBlock(
                hidden,
                config.n_heads,
                config.ffn_multiplier * hidden,
                config.dropout,
                config.attention_dropout,
                config.norm_first,
            )
            for _ in range(config.n_layers)
        )
        self.final_norm = nn.LayerNorm(hidden) if config.norm_first else nn.Identity()
        nn.init.normal_(self.item_embedding.weight, std=hidden**-0.5)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()

    @property
    def item_table(self) -> Tensor:
        """Output embeddings of the catalogue, (n_items, d)."""
        return self.item_embedding.weight[1:]

    def hidden_states(self, histories: Tensor) -> Tensor:
        """Histories (B, T) left-padded with PAD_ITEM -> hidden states (B, T, d); zeros at padding.

        Only the last ``max_len`` items are used (T may exceed it).
        """
        histories = histories[:, -self.config.max_len :]
        real = histories != PAD_ITEM  # (B, T)
        positions = (real.long().cumsum(dim=1) - 1).clamp_min(0)  # (B, T), 0 at the first real item
        x = self.item_embedding(histories + 1) * math.sqrt(self.config.hidden_size)
        x = self.input_dropout(x + self.position_embedding(positions))
        x = x * real[..., None]
        length = histories.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool, device=histories.device).tril()
        diagonal = torch.eye(length, dtype=torch.bool, device=histories.device)
        # A query sees earlier real items and always itself (so padded rows are never fully masked).
        allowed = (causal & real[:, None, :]) | diagonal  # (B, T, T)
        allowed = allowed[:, None]  # (B, 1, T, T), broadcast over heads
        for block in self.blocks:
            x = block(x, allowed)  # padded positions attend only to themselves: no effect on real ones
        return self.final_norm(x) * real[..., None]

    def score(self, hidden: Tensor) -> Tensor:
        """Hidden states (..., d) -> scores of every item (..., n_items)."""
        return hidden @ self.item_table.T

    def forward(self, histories: Tensor) -> Tensor:
        """Next-item scores after each history, (B, T) -> (B, n_items) from the last position."""
        return self.score(self.hidden_states(histories)[:, -1])


def left_pad(sequences: list, length: int | None = None) -> Tensor:
    """Item-index sequences -> (B, T) int64 tensor, left-padded with PAD_ITEM; keeps the last ``length``."""
    if length is None:
        length = max((len(seq) for seq in sequences), default=1)
    length = max(length, 1)
    out = torch.full((len(sequences), length), PAD_ITEM, dtype=torch.long)
    for row, seq in enumerate(sequences):
        tail = torch.as_tensor(seq[-length:] if len(seq) else [], dtype=torch.long)
        if len(tail):
            out[row, length - len(tail) :] = tail
    return out


def save_sasrec(model: SASRec, folder: str | Path, extra: dict | None = None) -> None:
    """Write ``model.safetensors`` and ``config.json`` (the architecture under ``model`` + ``extra``)."""
    folder = Path(folder)
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    with atomic_path(folder / WEIGHTS_FILE) as tmp:
        tmp.write_bytes(save(state))  # into the prepared temp file (keeps its permissions)
    write_json(folder / CONFIG_FILE, {"model": asdict(model.config), **(extra or {})})


def load_sasrec(folder: str | Path, device: str | torch.device = "cpu") -> SASRec:
    """Rebuild a model written by :func:`save_sasrec` (safetensors only), in eval mode."""
    folder = Path(folder)
    config = SASRecConfig(**read_json(folder / CONFIG_FILE)["model"])
    model = SASRec(config)
    model.load_state_dict(load_file(str(folder / WEIGHTS_FILE), device=str(device)))
    return model.to(device).eval()
