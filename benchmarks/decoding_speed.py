"""Decoding speed and quality on a trained model (or synthetic data shaped like MovieLens-1M), and
trie scaling.

1. With ``--model DIR --data DATA``: the trained model artifact and the test histories of DATA (last 50
   items); without: 3,883 items with codes 3 x 64 (+ dedup digit), random histories of 50 items and a
   randomly initialised ``causal`` "small" model. Users/s of the batched beam search (top-10, beam 20)
   vs the per-beam reference loop (outputs asserted equal), and the overlap of the beam's top-10 with the
   exact scorer's top-10 for a few beam widths.
2. 1,000,000 random 3 x 256 codes (+ dedup): trie build time and ``allowed_mask`` throughput.

Run: ``.venv/bin/python benchmarks/decoding_speed.py [--model DIR --data DATA] [--device cuda]`` (prints
a markdown table, writes JSON to benchmarks/results/decoding_speed.json).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from tracer.data.artifact import load_dataset
from tracer.data.sequences import build_sequences
from tracer.io import write_json
from tracer.model.artifact import load_model_artifact
from tracer.model.base import GenerativeRecommender
from tracer.model.decoding import beam_search, exact_scores, pad_histories
from tracer.model.registry import model_from_preset
from tracer.semantic_ids.trie import PrefixTrie

ROOT = Path(__file__).resolve().parents[1]


def load_module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def with_dedup_digit(base: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Append a dedup digit numbering the rows of each colliding group: (n, L) -> (n, L + 1), dedup vocab."""
    _, group = torch.unique(base, dim=0, return_inverse=True)
    order = torch.sort(group, stable=True).indices
    sorted_group = group[order]
    first = torch.ones_like(sorted_group, dtype=torch.bool)
    first[1:] = sorted_group[1:] != sorted_group[:-1]
    position = torch.arange(len(base))
    group_start = torch.cummax(torch.where(first, position, torch.zeros_like(position)), 0).values
    dedup = torch.empty_like(group)
    dedup[order] = position - group_start
    return torch.cat([base, dedup[:, None]], dim=1), int(dedup.max()) + 1


def skewed_codes(n_items: int, n_levels: int, codebook: int, seed: int) -> tuple[torch.Tensor, list[int]]:
    """Codes drawn from a Zipf-like distribution per level (shared prefixes, a few collisions)."""
    generator = torch.Generator().manual_seed(seed)
    weights = 1.0 / torch.arange(1, codebook + 1, dtype=torch.float) ** 0.8
    base = torch.stack(
        [torch.multinomial(weights, n_items, replacement=True, generator=generator) for _ in range(n_levels)],
        1,
    )
    codes, dedup_vocab = with_dedup_digit(base)
    return codes, [codebook] * n_levels + [dedup_vocab]


def build_model(codes: torch.Tensor, vocab_sizes: list[int], seed: int) -> tuple[GenerativeRecommender, str]:
    torch.manual_seed(seed)
    return model_from_preset("causal", "small", codes, vocab_sizes).eval(), "causal small (random init)"


def time_call(function, *args):
    """(result, seconds), waiting for queued GPU work before and after."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = function(*args)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def trained_setup(args: argparse.Namespace) -> tuple:
    """The trained model of ``args.model``, its codes and vocabulary, and ``args.users`` test histories."""
    model, sid_table, _ = load_model_artifact(args.model)
    histories = build_sequences(load_dataset(args.data)).histories("test")
    picked = np.random.default_rng(args.seed).permutation(len(histories))[: args.users]
    padded = pad_histories([histories[i][-50:] for i in picked], 50)
    name = f"{model.config_dict().get('n_layers', '?')}-layer trained model {args.model}"
    return model.eval(), name, model.codes, list(sid_table.vocab_sizes), padded


def decoding_benchmark(args: argparse.Namespace) -> dict:
    if args.model is not None:
        model, model_name, codes, vocab_sizes, histories = trained_setup(args)
    else:
        codes, vocab_sizes = skewed_codes(3883, 3, 64, seed=args.seed)
        model, model_name = build_model(codes, vocab_sizes, args.seed)
        generator = torch.Generator().manual_seed(args.seed + 1)
        histories = torch.randint(0, len(codes), (args.users, 50), generator=generator)
    codes = codes.cpu()
    model, histories = model.to(args.device), histories.to(args.device)
    trie = PrefixTrie.from_codes(codes, vocab_sizes).to(args.device)
    reference = load_module("reference_decoding", ROOT / "benchmarks" / "reference_decoding.py")

    beam_search(model, trie, histories[: args.batch_size], args.k, args.beam)  # warm-up
    fast_seconds, parts = 0.0, []
    for start in range(0, args.users, args.batch_size):
        (items, _), seconds = time_call(
            beam_search, model, trie, histories[start : start + args.batch_size], args.k, args.beam
        )
        fast_seconds += seconds
        parts.append(items)
    fast_items = torch.cat(parts)
    n_ref = args.reference_users
    (ref_items, _), ref_seconds = time_call(
        reference.reference_beam_search,
        model,
        reference.build_dict_trie(codes),
        histories[:n_ref],
        args.k,
        args.beam,
    )
    assert fast_items[:n_ref].tolist() == ref_items, "fast beam search differs from the reference loop"

    exact_top, exact_seconds = time_call(exact_top_k, model, trie, histories[: args.exact_users], args)
    agreement = {
        str(width): top_k_overlap(
            beam_search(model, trie, histories[: args.exact_users], args.k, width)[0], exact_top
        )
        for width in args.agreement_beams
    }
    return {
        "model": model_name,
        "n_items": len(codes),
        "vocab_sizes": vocab_sizes,
        "history_length": 50,
        "k": args.k,
        "beam_width": args.beam,
        "batch_size": args.batch_size,
        "fast_users": args.users,
        "fast_users_per_s": args.users / fast_seconds,
        "reference_users": n_ref,
        "reference_users_per_s": n_ref / ref_seconds,
        "speedup": (args.users / fast_seconds) / (n_ref / ref_seconds),
        "exact_users": args.exact_users,
        "exact_users_per_s": args.exact_users / exact_seconds,
        "beam_exact_agreement": agreement,
    }


def exact_top_k(
    model: GenerativeRecommender, trie: PrefixTrie, histories: torch.Tensor, args
) -> torch.Tensor:
    """Exact scorer's top-k items of each history, (U, k), in batches of ``args.exact_batch_size``."""
    parts = []
    for start in range(0, len(histories), args.exact_batch_size):
        batch = histories[start : start + args.exact_batch_size]
        parts.append(exact_scores(model, trie, batch, args.prefix_chunk).topk(args.k, dim=1).indices)
    return torch.cat(parts)


def top_k_overlap(beam_top: torch.Tensor, exact_top: torch.Tensor) -> dict:
    """Mean share of the exact top-k found by the beam, and the share of users with the same top-k set."""
    shares = [
        len(set(a) & set(b)) / len(b) for a, b in zip(beam_top.tolist(), exact_top.tolist(), strict=True)
    ]
    return {
        "overlap": float(np.mean(shares)),
        "identical": float(np.mean([share == 1.0 for share in shares])),
    }


def trie_benchmark(args: argparse.Namespace) -> dict:
    generator = torch.Generator().manual_seed(args.seed)
    codes, dedup_vocab = with_dedup_digit(torch.randint(0, 256, (args.trie_items, 3), generator=generator))
    vocab_sizes = [256, 256, 256, dedup_vocab]
    trie, build_seconds = time_call(PrefixTrie.from_codes, codes, vocab_sizes)
    queries = []
    for depth in range(trie.n_levels):  # beam-shaped batches: 1,024 users x 20 beams at each depth
        first, stop = trie.nodes_at_depth(depth)
        nodes = torch.randint(first, stop, (20480,), generator=generator)
        _, seconds = time_call(trie.allowed_mask, nodes)
        queries.append(seconds)
    return {
        "trie_items": args.trie_items,
        "trie_nodes": trie.n_nodes,
        "trie_build_s": build_seconds,
        "allowed_mask_nodes_per_s": 20480 * trie.n_levels / sum(queries),
    }


def markdown(result: dict) -> str:
    return "\n".join(
        [
            f"Model: {result['model']}; {result['n_items']} items, vocab {result['vocab_sizes']}, "
            f"history 50, top-{result['k']}, beam {result['beam_width']}.",
            "",
            "| measure | value |",
            "|---|---|",
            f"| fast beam search, users/s | {result['fast_users_per_s']:.1f} |",
            f"| reference loop, users/s | {result['reference_users_per_s']:.2f} |",
            f"| speed-up (outputs identical) | {result['speedup']:.0f}x |",
            f"| exact scorer, users/s | {result['exact_users_per_s']:.1f} |",
            *[
                f"| beam {width}: top-{result['k']} overlap with exact / users with identical sets | "
                f"{value['overlap']:.3f} / {value['identical']:.3f} |"
                for width, value in result["beam_exact_agreement"].items()
            ],
            f"| trie build, {result['trie_items']:,} items x 4 levels, s | {result['trie_build_s']:.2f} |",
            f"| allowed_mask, nodes/s | {result['allowed_mask_nodes_per_s']:,.0f} |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="trained model folder (default: a random model)")
    parser.add_argument("--data", type=Path, help="prepared dataset of --model (its test histories)")
    parser.add_argument("--users", type=int, default=512)
    parser.add_argument("--reference-users", type=int, default=16)
    parser.add_argument("--exact-users", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--exact-batch-size", type=int, default=16)
    parser.add_argument("--prefix-chunk", type=int, default=256)
    parser.add_argument("--agreement-beams", type=int, nargs="+", default=[20, 50, 200])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--beam", type=int, default=20)
    parser.add_argument("--trie-items", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "decoding_speed.json")
    parser.add_argument("--device", default="cpu", help="cpu or cuda: where the model and the trie run")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    result = {**decoding_benchmark(args), **trie_benchmark(args)}
    result["load_average_1min"] = [load_before, os.getloadavg()[0]]  # other work on the machine
    result["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    result["machine"] = f"{platform.machine()}, {torch.get_num_threads()} torch threads"
    if args.device != "cpu":
        result["machine"] += f", {torch.cuda.get_device_name()}"
    print(markdown(result))
    write_json(args.out, result)


if __name__ == "__main__":
    main()
