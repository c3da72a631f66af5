"""The GPU fast path on the CPU (issue 26): ``fused_loss`` and ``compile`` give the default path's losses
within 1e-5 step by step, a resumed run with them is bit-identical to an uninterrupted one, and the fused
loss is one graph (no host-device sync in a step)."""

from __future__ import annotations

import functools

import pytest
import torch
from torch._dynamo.eval_frame import OptimizedModule

from tests.helpers.random_sids import random_sid_table
from tests.helpers.resume import assert_resume_is_bit_identical
from tracer.data.artifact import load_dataset
from tracer.data.sequences import build_sequences
from tracer.distributed import init_distributed
from tracer.io import read_json
from tracer.model.base import PAD_ITEM
from tracer.model.layers import LevelHeads
from tracer.model.registry import model_from_preset
from tracer.semantic_ids.sid_table import SidTable
from tracer.training.batches import SequenceBatch, TargetBatch, TrainingExamples, to_device
from tracer.training.config import TrainConfig, load_preset
from tracer.training.loop import SummedNLL, build_model, loss_module_for, model_max_history, train

pytestmark = pytest.mark.usefixtures("one_thread")

OPTIONS = {"fused_loss": {"fused_loss": True}, "compile": {"compile": True},
           "both": {"fused_loss": True, "compile": True}}  # fmt: skip


@functools.cache
def inductor_available() -> bool:
    """Whether torch.compile's default backend can build a kernel here (it needs a C++ compiler)."""
    try:
        torch.compile(lambda x: x * 2)(torch.ones(2))
    except Exception:  # noqa: BLE001 - any failure of the toolchain means "skip", with the reason below
        return False
    return True


def skip_without_inductor() -> None:
    if not inductor_available():
        pytest.skip("torch.compile's inductor backend cannot build kernels here (no C++ toolchain?)")


def fast_config(backbone: str, **changes) -> TrainConfig:
    return load_preset("tiny").replace(backbone=backbone, **changes)


def test_fused_cross_entropy_equals_the_log_softmax_nll_and_its_gradient():
    """Levels of different vocabulary sizes, so that the padding beyond a level's vocabulary counts."""
    torch.manual_seed(0)
    heads = LevelHeads(6, [5, 7, 3])
    with torch.no_grad():
        heads.bias.normal_()  # the bias must enter both ways
    hidden = torch.randn(4, 9, 3, 6, requires_grad=True)
    codes = torch.stack([torch.randint(0, v, (4, 9)) for v in (5, 7, 3)], dim=-1)  # (4, 9, 3)
    expected = -heads.all_levels_log_probs(hidden).gather(-1, codes[..., None])[..., 0].sum(-1)
    fused = heads.sid_nll(hidden, codes)
    assert fused.shape == (4, 9)
    torch.testing.assert_close(fused, expected, rtol=0, atol=1e-5)
    (grad_expected,) = torch.autograd.grad(expected.sum(), hidden)
    (grad_fused,) = torch.autograd.grad(fused.sum(), hidden)
    torch.testing.assert_close(grad_fused, grad_expected, rtol=0, atol=1e-5)


def short_batch(backbone: str, model) -> SequenceBatch | TargetBatch:
    """A batch whose rows all start with PAD columns: the default path trims them, the fused one keeps
    them, and both must score the same."""
    width = model_max_history(model) + (1 if backbone == "causal" else 0)
    generator = torch.Generator().manual_seed(1)
    items = torch.randint(0, model.n_items, (5, width), generator=generator)
    lengths = torch.tensor([2, 3, 5, 4, 2]) + (1 if backbone == "causal" else 0)
    items[torch.arange(width)[None, :] < (width - lengths)[:, None]] = PAD_ITEM
    if backbone == "causal":
        mask = (items != PAD_ITEM) & (torch.arange(width) > width - lengths[:, None])
        return SequenceBatch(items, mask)
    return TargetBatch(items, torch.randint(0, model.n_items, (5,), generator=generator))


@pytest.mark.parametrize("backbone", ["causal", "tiger"])
def test_fused_batch_loss_equals_the_default_one_on_padded_rows(backbone):
    codes, vocab_sizes = random_sid_table(30, [4, 6], seed=0)
    torch.manual_seed(0)
    model = model_from_preset(backbone, "tiny", codes, vocab_sizes, max_history=8).eval()
    batch = short_batch(backbone, model)
    default, fused = batch.target_nll(model), batch.fused_nll(model)
    torch.testing.assert_close(fused.sum(), default.sum(), rtol=0, atol=1e-4)
    if backbone == "causal":  # per position: the fused values sit at the mask, zeros elsewhere
        assert fused.shape == batch.sequences.shape and bool((fused[~batch.loss_mask] == 0).all())
        torch.testing.assert_close(fused[batch.loss_mask], default, rtol=0, atol=1e-5)
    else:
        torch.testing.assert_close(fused, default, rtol=0, atol=1e-5)


@pytest.mark.parametrize("backbone", ["causal", "tiger"])
def test_the_fused_loss_is_one_graph_without_a_host_read(backbone, tiny_inputs):
    """torch.compile(fullgraph=True) refuses any data-dependent host read (``.item()``, ``bool(t)``,
    boolean indexing): the fused loss passes, the default one does not."""
    config = fast_config(backbone)
    model = build_model(config, SidTable.load(tiny_inputs[1])).eval()
    examples = TrainingExamples(build_sequences(load_dataset(tiny_inputs[0])), model.batch_kind, 8)
    batch = next(iter(examples.epoch_steps(batch_size=16, seed=0, epoch=0))).batch
    torch._dynamo.reset()
    fused = torch.compile(SummedNLL(model, fused=True), fullgraph=True, backend="eager")(batch)
    torch.testing.assert_close(fused, SummedNLL(model)(batch), rtol=0, atol=1e-4)
    torch._dynamo.reset()
    with pytest.raises(Exception, match="(?i)data.dependent|graph break|unsupported"):
        torch.compile(SummedNLL(model), fullgraph=True, backend="eager")(batch)
    torch._dynamo.reset()


def one_step_epochs(backbone: str, **changes) -> TrainConfig:
    """Every epoch one optimiser step of 16 rows (train_log.json then holds per-step losses); no dropout,
    so that a compiled step draws no random numbers of its own."""
    return fast_config(backbone, max_epochs=4, patience=4, batch_size=16, rows_per_epoch=16,
                       model_overrides={"dropout": 0.0}, **changes)  # fmt: skip


def step_losses(config: TrainConfig, inputs, out) -> list[float]:
    train(config, *inputs, out, show_progress=False)
    return [entry["loss"] for entry in read_json(out / "train_log.json")]


@pytest.fixture(scope="module")
def default_losses(tiny_inputs, tmp_path_factory):
    folder = tmp_path_factory.mktemp("default")
    return {b: step_losses(one_step_epochs(b), tiny_inputs, folder / b) for b in ("causal", "tiger")}


@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("backbone", ["causal", "tiger"])
def test_each_fast_path_option_gives_the_default_losses_step_by_step(
    option, backbone, tiny_inputs, default_losses, tmp_path
):
    if OPTIONS[option].get("compile"):
        skip_without_inductor()
    losses = step_losses(one_step_epochs(backbone, **OPTIONS[option]), tiny_inputs, tmp_path / "run")
    assert len(losses) == len(default_losses[backbone]) == 4
    assert default_losses[backbone][-1] < default_losses[backbone][0]  # the steps did train
    for fast, default in zip(losses, default_losses[backbone], strict=True):
        assert abs(fast - default) <= 1e-5, (losses, default_losses[backbone])


@pytest.mark.parametrize(("backbone", "option"), [("causal", "both"), ("tiger", "fused_loss")])
def test_resume_with_the_fast_path_is_bit_identical(backbone, option, tiny_inputs, tmp_path):
    """Dropout on (the tiny preset's 0.1): a compiled step's random numbers replay on resume too."""
    if OPTIONS[option].get("compile"):
        skip_without_inductor()
    config = fast_config(backbone, max_epochs=3, patience=5, batch_size=32, **OPTIONS[option])
    assert_resume_is_bit_identical(config, tiny_inputs, tmp_path)


@pytest.mark.parametrize("option", list(OPTIONS))
def test_the_loop_builds_the_loss_module_the_settings_ask_for(option, tiny_inputs):
    config = fast_config("causal", **OPTIONS[option])
    model = build_model(config, SidTable.load(tiny_inputs[1]))
    module = loss_module_for(model, config, init_distributed("cpu"))
    assert isinstance(module, OptimizedModule) == config.compile
    summed = module._orig_mod if config.compile else module
    assert isinstance(summed, SummedNLL) and summed.model is model and summed.fused == config.fused_loss


def test_to_device_keeps_the_values_and_a_cpu_tensor_in_place():
    tensor = torch.arange(6).reshape(2, 3)
    assert to_device(tensor, "cpu") is tensor
    assert to_device(tensor, torch.device("cpu")) is tensor


def test_fast_path_settings_are_off_by_default_and_round_trip(tmp_path):
    assert (TrainConfig.fused_loss, TrainConfig.compile) == (False, False)
    config = fast_config("causal", fused_loss=True, compile=True)
    config.save(tmp_path / "preset.yaml")
    assert TrainConfig.load(tmp_path / "preset.yaml") == config
    assert config.differences(fast_config("causal")) == ["train.compile", "train.fused_loss"]


def test_the_gpu_preset_is_ml_1m_deep_with_four_times_the_batch_and_the_fast_path():
    gpu, base = load_preset("ml-1m-deep-gpu"), load_preset("ml-1m-deep")
    changed = ["train.batch_size", "train.compile", "train.fused_loss", "train.lr", "train.warmup_steps"]
    assert gpu.differences(base) == changed
    assert gpu.fused_loss and gpu.compile and gpu.batch_size == 4 * base.batch_size
    assert gpu.lr == pytest.approx(base.lr * 2)  # the square root of the batch ratio
    assert gpu.warmup_steps * gpu.batch_size == base.warmup_steps * base.batch_size  # as many warmup rows
