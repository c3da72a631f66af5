"""Training speed as achieved model FLOP/s next to this machine's dense matmul FLOP/s, same run.

For every backbone given, trains the preset to early stop (``tracer.training.loop.train``) and reports:
time to early stop, epochs, valid/test Recall/NDCG@5/10, training throughput (targets/s over the
training steps only, validation excluded) and achieved model FLOP/s = FLOPs per target x targets/s.
FLOPs per target are counted by ``torch.utils.flop_counter.FlopCounterMode`` on one forward + backward
of a real training batch (matmuls and attention; element-wise work is not counted). The matmul
reference is the best of several timed ``torch.mm`` in the training precision (fp32 2048^2 on a CPU,
bf16 8192^2 on CUDA, where training runs under bf16 autocast), measured right before and right after
training in the same process. ``--device cuda`` runs all of it on the GPU
(``benchmarks/device_check.sh``); ``--fast-path`` turns on the preset's ``fused_loss`` and ``compile``
(the GPU fast path, issue 26) for the throughput of ``--steps-only``.

    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 OMP_WAIT_POLICY=PASSIVE \\
      .venv/bin/python benchmarks/train_flops.py --data runs/ml-100k/data \\
      --sids runs/ml-100k/sids-rq-kmeans --preset ml-100k --backbone causal --backbone tiger

Writes ``benchmarks/results/training_<label>.json`` (or ``--out``) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from tracer.data.artifact import load_dataset
from tracer.data.sequences import build_sequences
from tracer.distributed import init_distributed, resolve_device
from tracer.io import read_json, write_json
from tracer.semantic_ids.sid_table import SidTable
from tracer.training.batches import TrainingExamples
from tracer.training.config import TrainConfig, load_preset
from tracer.training.loop import (
    SummedNLL,
    build_model,
    loss_module_for,
    make_optimizer,
    model_max_history,
    train,
)

RESULTS = Path(__file__).resolve().parent / "results"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_flops(device: torch.device, repeats: int = 8) -> float:
    """Best-of-``repeats`` FLOP/s of one square product in the training precision of ``device``."""
    size, dtype = (8192, torch.bfloat16) if device.type == "cuda" else (2048, torch.float32)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best


def flops_per_target(config: TrainConfig, data_dir: str, sids_dir: str) -> tuple[float, int]:
    """Counted forward + backward FLOPs per training target on the first batch of epoch 0; params."""
    data = build_sequences(load_dataset(data_dir))
    model = build_model(config, SidTable.load(sids_dir)).to(resolve_device(config.device))
    examples = TrainingExamples(data, model.batch_kind, model_max_history(model))
    step = next(examples.epoch_steps(config.batch_size, config.seed, 0))
    with FlopCounterMode(display=False) as counter:
        SummedNLL(model, config.fused_loss)(step.batch.to(model.codes.device)).backward()
    return counter.get_total_flops() / step.global_targets, sum(p.numel() for p in model.parameters())


def step_throughput(config: TrainConfig, data_dir: str, sids_dir: str, steps: int) -> tuple[float, float]:
    """Training targets/s and steps/s over ``steps`` optimiser steps (after one warm-up step, which
    compiles with ``compile``), no validation: for backbones too slow to train to early stop here (tiger
    on a CPU), and for the GPU fast path against the default one."""
    device = resolve_device(config.device)
    data = build_sequences(load_dataset(data_dir))
    model = build_model(config, SidTable.load(sids_dir)).to(device).train()
    optimizer = make_optimizer(model, config)
    loss_module = loss_module_for(model, config, init_distributed(config.device))
    examples = TrainingExamples(data, model.batch_kind, model_max_history(model))
    done, timed, start = 0, 0, 0.0
    for index, step in enumerate(examples.epoch_steps(config.batch_size, config.seed, 0)):
        if index == 1:
            synchronize(device)
            start = time.perf_counter()
        loss = loss_module(step.batch.to(device)) / step.global_targets
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        done += step.global_targets if index >= 1 else 0
        timed += index >= 1
        if index == steps:
            break
    synchronize(device)
    seconds = time.perf_counter() - start
    return done / seconds, timed / seconds


def benchmark_steps(config: TrainConfig, data_dir: str, sids_dir: str, steps: int) -> dict:
    device = resolve_device(config.device)
    per_target, params = flops_per_target(config, data_dir, sids_dir)
    peak_before = matmul_flops(device)
    targets_per_second, steps_per_second = step_throughput(config, data_dir, sids_dir, steps)
    peak_after = matmul_flops(device)
    achieved = per_target * targets_per_second
    return {
        "backbone": config.backbone,
        "config": config.to_dict(),
        "parameters": params,
        "measured_steps": steps,
        "steps_per_second": steps_per_second,
        "targets_per_second": targets_per_second,
        "flops_per_target": per_target,
        "achieved_flops": achieved,
        "matmul_flops_before": peak_before,
        "matmul_flops_after": peak_after,
        "share_of_matmul": achieved / ((peak_before + peak_after) / 2),
    }


def benchmark(config: TrainConfig, data_dir: str, sids_dir: str, out_dir: Path) -> dict:
    device = resolve_device(config.device)
    per_target, params = flops_per_target(config, data_dir, sids_dir)
    peak_before = matmul_flops(device)
    start = time.perf_counter()
    summary = train(config, data_dir, sids_dir, out_dir, overwrite=True)
    seconds = time.perf_counter() - start
    peak_after = matmul_flops(device)
    log = read_json(out_dir / "train_log.json")
    train_seconds = sum(entry["train_seconds"] for entry in log)
    targets_per_second = (
        sum(entry["targets_per_second"] * entry["train_seconds"] for entry in log) / train_seconds
    )
    achieved = per_target * targets_per_second
    peak = (peak_before + peak_after) / 2
    return {
        "backbone": config.backbone,
        "config": config.to_dict(),
        "parameters": params,
        "seconds_to_early_stop": seconds,
        "train_step_seconds": train_seconds,
        "validation_seconds": sum(entry["eval_seconds"] for entry in log),
        "epochs": summary["epochs"],
        "best_epoch": summary["best_epoch"],
        "stopped_early": summary["stopped_early"],
        "valid": summary["valid"]["all"],
        "test": summary["test"]["all"],
        "targets_per_second": targets_per_second,
        "flops_per_target": per_target,
        "achieved_flops": achieved,
        "matmul_flops_before": peak_before,
        "matmul_flops_after": peak_after,
        "share_of_matmul": achieved / peak,
    }


def markdown(rows: list[dict]) -> str:
    head = (
        "| backbone | params | epochs (best) | s to early stop | valid R@5 / N@5 / R@10 / N@10 | "
        "test R@5 / N@5 / R@10 / N@10 | targets/s | model GFLOP/s | matmul GFLOP/s | share |\n"
        "|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        peak = (r["matmul_flops_before"] + r["matmul_flops_after"]) / 2
        if "valid" not in r:  # throughput only
            lines.append(
                f"| {r['backbone']} | {r['parameters']:,} | ({r['measured_steps']} steps only, "
                f"{r['steps_per_second']:.1f} steps/s) | - | - | - | "
                f"{r['targets_per_second']:,.0f} | {r['achieved_flops'] / 1e9:.1f} | {peak / 1e9:.1f} | "
                f"{r['share_of_matmul']:.0%} |"
            )
            continue
        v, t = r["valid"], r["test"]
        lines.append(
            f"| {r['backbone']} | {r['parameters']:,} | {r['epochs']} ({r['best_epoch']}) | "
            f"{r['seconds_to_early_stop']:.0f} | "
            f"{v['recall@5']:.4f} / {v['ndcg@5']:.4f} / {v['recall@10']:.4f} / {v['ndcg@10']:.4f} | "
            f"{t['recall@5']:.4f} / {t['ndcg@5']:.4f} / {t['recall@10']:.4f} / {t['ndcg@10']:.4f} | "
            f"{r['targets_per_second']:,.0f} | {r['achieved_flops'] / 1e9:.1f} | {peak / 1e9:.1f} | "
            f"{r['share_of_matmul']:.0%} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", required=True)
    parser.add_argument("--sids", required=True)
    parser.add_argument("--preset", default="ml-100k")
    parser.add_argument(
        "--backbone",
        action="append",
        help="Backbones to train to early stop (default: the preset's, none with only --steps-only).",
    )
    parser.add_argument("--runs", default="bench-out/training", help="Where the run folders go.")
    parser.add_argument("--label", default=None, help="Results file label (default: the preset name).")
    parser.add_argument(
        "--steps-only",
        action="append",
        default=[],
        metavar="BACKBONE",
        help="Measure this backbone's throughput over --steps steps instead of training to early stop.",
    )
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default=None, help="cpu, cuda or auto (default: the preset's).")
    parser.add_argument(
        "--fast-path", action="store_true", help="Set the preset's fused_loss and compile (GPU fast path)."
    )
    parser.add_argument("--out", default=None, help="Results file (default: results/training_<label>.json).")
    args = parser.parse_args()
    base = load_preset(args.preset)
    if args.device is not None:
        base = base.replace(device=args.device)
    if args.fast_path:
        base = base.replace(fused_loss=True, compile=True)
    rows = []
    for backbone in args.backbone or ([] if args.steps_only else [base.backbone]):
        config = base.replace(backbone=backbone)  # like `tracer train --backbone`: same model overrides
        out_dir = Path(args.runs) / f"{Path(args.preset).stem}-{backbone}"
        rows.append(benchmark(config, args.data, args.sids, out_dir))
    for backbone in args.steps_only:
        rows.append(benchmark_steps(base.replace(backbone=backbone), args.data, args.sids, args.steps))
    label = args.label or Path(args.preset).stem
    machine = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": str(resolve_device(base.device)),
        "gpu": torch.cuda.get_device_name() if resolve_device(base.device).type == "cuda" else None,
        "load_average_after": os.getloadavg(),
        "env": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MALLOC_MMAP_MAX_")},
    }
    write_json(args.out or RESULTS / f"training_{label}.json", {"machine": machine, "runs": rows})
    print(json.dumps(machine))
    print(markdown(rows))


if __name__ == "__main__":
    main()
