"""The CUDA path: bf16 autocast in training, the fast path (no host-device sync in a step, the same
losses), decoding on the GPU, SASRec on the GPU.

Skipped where torch sees no CUDA device (CI, the CPU machines). Run them on a GPU machine with
``benchmarks/device_check.sh``, which also times ML-1M training there.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.helpers.random_sids import random_histories, random_sid_table
from tests.helpers.sasrec_data import cyclic_data, tiny_settings
from tracer.data.artifact import load_dataset
from tracer.data.sequences import build_sequences
from tracer.io import read_json
from tracer.model.decoding import beam_search, exact_scores
from tracer.model.registry import model_from_preset
from tracer.semantic_ids.sid_table import SidTable
from tracer.semantic_ids.trie import PrefixTrie
from tracer.training.batches import TrainingExamples
from tracer.training.config import load_preset
from tracer.training.loop import SummedNLL, build_model, make_optimizer
from tracer.training.loop import train as train_generative
from tracer.training.sasrec_train import train_sasrec

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("backbone", ["causal", "tiger"])
def test_training_loss_runs_in_bf16_and_stays_close_to_float32(tiny_inputs, backbone):
    data_dir, sids_dir = tiny_inputs
    config = load_preset("tiny").replace(backbone=backbone)
    model = build_model(config, SidTable.load(sids_dir)).cuda().eval()  # eval: no dropout noise
    examples = TrainingExamples(build_sequences(load_dataset(data_dir)), model.batch_kind, 8)
    batch = next(iter(examples.epoch_steps(batch_size=16, seed=0, epoch=0))).batch.to("cuda")
    with torch.no_grad():
        float32 = batch.target_nll(model).sum()
        bf16 = SummedNLL(model)(batch)
    assert bf16.item() != float32.item()  # autocast changed the arithmetic
    torch.testing.assert_close(bf16.float(), float32, rtol=3e-2, atol=0.0)


def test_fast_path_training_steps_never_wait_for_the_gpu(tiny_inputs):
    """With ``fused_loss`` a step (pinned batch copy, loss, backward, clipping, fused AdamW) makes no
    host-device sync: torch raises on any synchronising call in sync-debug mode "error"."""
    config = load_preset("tiny").replace(device="cuda", fused_loss=True)
    model = build_model(config, SidTable.load(tiny_inputs[1])).cuda().train()
    optimizer = make_optimizer(model, config)
    loss_module = SummedNLL(model, fused=True)
    examples = TrainingExamples(build_sequences(load_dataset(tiny_inputs[0])), model.batch_kind, 8)
    steps = list(examples.epoch_steps(batch_size=16, seed=0, epoch=0))[:4]

    def step(index: int) -> torch.Tensor:
        loss = loss_module(steps[index].batch.to("cuda")) / steps[index].global_targets
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        return loss.detach()

    step(0)  # the first step initialises the optimiser state and the libraries' handles
    torch.cuda.set_sync_debug_mode("error")
    try:
        losses = torch.stack([step(index) for index in range(1, len(steps))])
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert bool(torch.isfinite(losses).all())


def test_fast_path_losses_equal_the_default_ones_on_cuda(tiny_inputs, tmp_path):
    """One step an epoch, no dropout: fused_loss + compile against the default path, under bf16."""
    base = load_preset("tiny").replace(device="cuda", max_epochs=4, patience=4, batch_size=16,
                                       rows_per_epoch=16, model_overrides={"dropout": 0.0})  # fmt: skip
    losses = {}
    for name, changes in (("default", {}), ("fast", {"fused_loss": True, "compile": True})):
        train_generative(base.replace(**changes), *tiny_inputs, tmp_path / name, show_progress=False)
        losses[name] = [entry["loss"] for entry in read_json(tmp_path / name / "train_log.json")]
    np.testing.assert_allclose(losses["fast"], losses["default"], rtol=5e-3)


def test_cuda_training_lowers_the_loss_and_saves_float32_weights(tiny_inputs, tmp_path):
    config = load_preset("tiny").replace(max_epochs=4, patience=4, device="cuda")
    summary = train_generative(config, *tiny_inputs, tmp_path / "run", show_progress=False)
    log = read_json(tmp_path / "run" / "train_log.json")
    assert log[-1]["loss"] < 0.8 * log[0]["loss"]
    assert summary["valid"]["all"]["recall@10"] > 10 / 24  # chance: 10 of 24 items
    weights = load_file(str(tmp_path / "run" / "model.safetensors"))
    floating = [tensor for tensor in weights.values() if tensor.is_floating_point()]
    assert floating and all(tensor.dtype == torch.float32 for tensor in floating)


@pytest.mark.parametrize("backbone", ["causal", "tiger"])
def test_gpu_decoding_equals_the_exact_scorer_and_the_cpu(backbone):
    codes, vocab_sizes = random_sid_table(80, [4, 5], seed=3)  # beam 20 covers every inner depth
    torch.manual_seed(0)
    model = model_from_preset(backbone, "tiny", codes, vocab_sizes).eval()
    histories = random_histories(6, 5, len(codes), seed=4)
    trie = PrefixTrie.from_codes(codes, vocab_sizes)
    cpu_exact = exact_scores(model, trie, histories)
    model, trie, histories = model.cuda(), trie.to("cuda"), histories.cuda()
    items, scores = beam_search(model, trie, histories, k=10, beam_width=20)
    gpu_exact = exact_scores(model, trie, histories)
    assert items.is_cuda and torch.equal(items, gpu_exact.topk(10, dim=1).indices)
    torch.testing.assert_close(scores, gpu_exact.gather(1, items), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gpu_exact.cpu(), cpu_exact, rtol=1e-4, atol=1e-4)


def test_sasrec_learns_on_cuda():
    result = train_sasrec(cyclic_data(), tiny_settings(), seed=0, device=torch.device("cuda"), progress=False)
    assert result.test["recall@5"] > 0.9  # chance is 5/30
    assert np.all(np.diff(result.test_scores, axis=1) <= 0)
