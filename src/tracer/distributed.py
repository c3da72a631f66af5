"""Single-process or ``torchrun`` data-parallel training: process group, DDP wrapping, gathering.

Under ``torchrun`` (env ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``) every process joins one group (gloo on
CPU, nccl on CUDA), holds the same model (DDP broadcasts rank 0's weights and averages gradients),
trains on its share of each step's rows, and gets identical metrics through all-reduce/all-gather.
Only rank 0 writes files. Without those variables everything here is a no-op on one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from tracer.errors import UserError


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` of ``world_size`` processes, its ``device``."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; anything else is passed to ``torch.device``.

    UserError for a name torch does not know, or CUDA asked for on a machine without it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}: pass cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(
            f"--device {name}: CUDA is not available on this machine; pass --device cpu (or auto)"
        )
    return device


def init_distributed(device: str = "auto") -> DistContext:
    """Join the process group when launched by ``torchrun``; else a one-process context."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext(rank=0, world_size=1, device=resolve_device(device))
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    base = resolve_device(device)
    if base.type == "cuda":
        torch.cuda.set_device(local_rank)
        base = torch.device("cuda", local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if base.type == "cuda" else "gloo")
    return DistContext(rank=rank, world_size=world_size, device=base)


def shutdown(context: DistContext) -> None:
    """Tear the process group down together: a barrier first, so that no rank exits (rank 0 hosts the
    rendezvous store) while another still talks to it (seen as a gloo abort at exit)."""
    if context.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier(context: DistContext) -> None:
    if context.distributed:
        dist.barrier()


def wrap_ddp(module: nn.Module, context: DistContext) -> nn.Module:
    """DDP-wrap ``module`` when distributed (its ``forward`` must produce the loss); else unchanged."""
    if not context.distributed:
        return module
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids, broadcast_buffers=False)


def shard(indices: np.ndarray, context: DistContext) -> np.ndarray:
    """This rank's share of ``indices``: elements rank, rank + world_size, ..."""
    return indices[context.rank :: context.world_size]


def all_reduce_sum(values: np.ndarray, context: DistContext) -> np.ndarray:
    """Element-wise sum over ranks of a float64 vector; identical on every rank."""
    values = np.asarray(values, dtype=np.float64)
    if not context.distributed:
        return values
    tensor = torch.from_numpy(values.copy()).to(_collective_device(context))
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu().numpy()


def gather_rows(array: np.ndarray, indices: np.ndarray, total: int, context: DistContext) -> np.ndarray:
    """Reassemble per-rank rows: this rank holds ``array[j]`` for row ``indices[j]`` (its :func:`shard`).

    -> (total, ...) with every rank's rows in place, on every rank.
    """
    if not context.distributed:
        return array
    parts = [None] * context.world_size
    dist.all_gather_object(parts, (np.asarray(indices), np.asarray(array)))
    out = np.empty((total, *array.shape[1:]), dtype=array.dtype)
    for part_indices, part in parts:
        out[part_indices] = part
    return out


def broadcast_flag(flag: bool, context: DistContext) -> bool:
    """Rank 0's boolean on every rank (keeps control flow in lock-step)."""
    if not context.distributed:
        return flag
    tensor = torch.tensor([int(flag)], device=_collective_device(context))
    dist.broadcast(tensor, src=0)
    return bool(tensor.item())


def _collective_device(context: DistContext) -> torch.device:
    return context.device if context.device.type == "cuda" else torch.device("cpu")
