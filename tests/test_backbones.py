"""Properties of the ``tiger`` and ``causal`` backbones (tiny presets, random SID tables)."""

from __future__ import annotations

import pytest
import torch

from tracer.errors import UserError
from tracer.model.base import PAD_ITEM, SoftCodes
from tracer.model.registry import BACKBONES, build_model, model_from_preset, model_presets, untrained_copy
from tracer.model.tiger import relative_position_bucket

N_ITEMS = 30
VOCAB_SIZES = [8, 8, 8, 4]  # 3 levels x K=8 + a dedup digit
N_LEVELS = len(VOCAB_SIZES)
MAX_VOCAB = max(VOCAB_SIZES)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def codes() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.stack([torch.randint(0, v, (N_ITEMS,), generator=generator) for v in VOCAB_SIZES], dim=1)


# every backbone, and both ways the tiger encoder can encode item order
VARIANTS = {
    "causal": ("causal", {}),
    "tiger-absolute": ("tiger", {"position_encoding": "absolute"}),
    "tiger-relative": ("tiger", {"position_encoding": "relative"}),
}
EVERY_VARIANT = pytest.mark.parametrize("variant", sorted(VARIANTS))


def make_model(variant: str, codes: torch.Tensor, seed: int = 0, **overrides):
    backbone, settings = VARIANTS[variant]
    torch.manual_seed(seed)
    return model_from_preset(backbone, "tiny", codes, VOCAB_SIZES, **settings, **overrides).eval()


def ragged_histories(lengths: list[int], width: int, seed: int = 1) -> torch.Tensor:
    """Random histories (B, width) left-padded with PAD_ITEM to the given lengths."""
    generator = torch.Generator().manual_seed(seed)
    rows = torch.randint(0, N_ITEMS, (len(lengths), width), generator=generator)
    for row, length in enumerate(lengths):
        rows[row, : width - length] = PAD_ITEM
    return rows


def assert_normalised(log_probs: torch.Tensor, level: int) -> None:
    """Log-probs (..., V) of a level-``level`` token sum to one over its vocabulary, -inf beyond it."""
    size = VOCAB_SIZES[level]
    sums = log_probs[..., :size].logsumexp(-1)
    torch.testing.assert_close(sums, torch.zeros_like(sums), atol=1e-5, rtol=0)
    assert torch.isneginf(log_probs[..., size:]).all()


def assert_every_level_normalised(log_probs: torch.Tensor) -> None:
    """Log-probs (..., L, V)."""
    for level in range(N_LEVELS):
        assert_normalised(log_probs[..., level, :], level)


@EVERY_VARIANT
def test_fused_teacher_forcing_and_candidate_scoring_equal_stepwise_prefix_scoring(variant, codes):
    model = make_model(variant, codes)
    histories = ragged_histories([5, 0, 2, 8], width=8)
    candidates = torch.tensor([[3, 17, 29], [0, 1, 2], [5, 5, 11], [20, 8, 14]])  # (B, W)
    with torch.no_grad():
        cache = model.encode_history(histories)
        expected = torch.stack(
            [model.next_item_log_probs(histories, candidates[:, w]) for w in range(candidates.shape[1])],
            dim=1,
        )  # (B, W, L, V)
        fused = model.candidate_level_log_probs(cache, model.item_token_embeddings(candidates))
        for level in range(N_LEVELS):
            stepwise = model.prefix_log_probs_from_tokens(cache, codes[candidates][:, :, :level])  # (B, W, V)
            torch.testing.assert_close(stepwise, expected[:, :, level], atol=1e-5, rtol=1e-5)
            assert_normalised(stepwise, level)
    torch.testing.assert_close(fused, expected, atol=1e-5, rtol=1e-5)


@EVERY_VARIANT
def test_every_level_normalises_over_its_own_vocabulary(variant, codes):
    model = make_model(variant, codes)
    histories = ragged_histories([3, 8, 1], width=8)
    with torch.no_grad():
        log_probs = model.next_item_log_probs(histories, torch.tensor([4, 9, 28]))
    assert log_probs.shape == (3, N_LEVELS, MAX_VOCAB)
    assert_every_level_normalised(log_probs)


@EVERY_VARIANT
def test_left_padding_changes_nothing(variant, codes):
    model = make_model(variant, codes)
    lengths = [6, 1, 3, 0]
    batch = ragged_histories(lengths, width=8, seed=3)
    extra_padded = torch.cat([torch.full((4, 5), PAD_ITEM), batch], dim=1)
    next_items = torch.tensor([7, 0, 19, 12])
    with torch.no_grad():
        padded = model.next_item_log_probs(batch, next_items)
        more_padded = model.next_item_log_probs(extra_padded, next_items)
        alone = torch.cat(
            [
                model.next_item_log_probs(batch[i : i + 1, 8 - n :], next_items[i : i + 1])
                for i, n in enumerate(lengths)
            ]
        )
    torch.testing.assert_close(padded, alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(more_padded, alone, atol=1e-5, rtol=1e-5)


@EVERY_VARIANT
def test_only_the_most_recent_max_history_items_count(variant, codes):
    model = make_model(variant, codes)  # tiny presets keep 8 items
    long_histories = ragged_histories([12, 10], width=12, seed=13)
    next_items = torch.tensor([4, 21])
    with torch.no_grad():
        truncated = model.next_item_log_probs(long_histories[:, -8:], next_items)
        torch.testing.assert_close(model.next_item_log_probs(long_histories, next_items), truncated)
        changed_old_items = long_histories.clone()
        changed_old_items[:, :4] = (changed_old_items[:, :4] + 1) % N_ITEMS
        torch.testing.assert_close(model.next_item_log_probs(changed_old_items, next_items), truncated)
        changed_recent = long_histories.clone()
        changed_recent[:, -1] = (changed_recent[:, -1] + 1) % N_ITEMS
        assert not torch.allclose(model.next_item_log_probs(changed_recent, next_items), truncated)


def test_causal_sequence_pass_equals_next_item_scoring_at_every_position(codes):
    model = make_model("causal", codes)
    sequences = ragged_histories([9, 4, 1, 7], width=9, seed=5)
    with torch.no_grad():
        one_pass = model.sequence_log_probs(sequences)  # (B, T, L, V)
        assert one_pass.shape == (4, 9, N_LEVELS, MAX_VOCAB)
        real = sequences != PAD_ITEM
        for row in range(4):  # each row alone, without padding
            alone = model.sequence_log_probs(sequences[row : row + 1, real[row]])
            torch.testing.assert_close(alone[0], one_pass[row, real[row]], atol=1e-5, rtol=1e-5)
        for t in range(sequences.shape[1]):
            rows = real[:, t]
            expected = model.next_item_log_probs(sequences[rows, :t], sequences[rows, t])
            torch.testing.assert_close(one_pass[rows, t], expected, atol=1e-5, rtol=1e-5)
    assert_every_level_normalised(one_pass[real])


def test_causal_refuses_sequences_longer_than_its_window(codes):
    model = make_model("causal", codes)  # max_history 8 -> windows of 9 items
    with pytest.raises(ValueError, match="windows"):
        model.sequence_log_probs(torch.randint(0, N_ITEMS, (2, 10)))


@EVERY_VARIANT
def test_dropout_acts_only_in_training(variant, codes):
    model = make_model(variant, codes, dropout=0.3, attention_dropout=0.3)
    histories, next_items = ragged_histories([4, 8], width=8), torch.tensor([1, 2])
    with torch.no_grad():
        evaluated = [model.next_item_log_probs(histories, next_items) for _ in range(2)]
        model.train()
        trained = [model.next_item_log_probs(histories, next_items) for _ in range(2)]
    assert torch.equal(evaluated[0], evaluated[1])
    assert not torch.allclose(trained[0], trained[1])


@EVERY_VARIANT
def test_an_untrained_copy_is_the_architecture_at_a_seeded_initialisation_over_the_same_codes(variant, codes):
    """The copy's weights are those of a model built at the given seed, whatever the original's; the
    original, the caller's random stream and the SID table are untouched."""
    trained = make_model(variant, codes, seed=3)
    with torch.no_grad():
        for param in trained.parameters():
            param.add_(1.0)  # weights no initialisation gives
        trained.codes.copy_(trained.codes.flip(0))  # a SID table of its own (after an erasure)
    before = {name: value.clone() for name, value in trained.state_dict().items()}
    torch.manual_seed(11)
    untrained = untrained_copy(trained, seed=5)
    stream = torch.rand(3)
    built = make_model(variant, codes, seed=5)
    assert not untrained.training
    for name, value in trained.state_dict().items():
        assert torch.equal(value, before[name]), name
    pairs = zip(untrained.named_parameters(), built.named_parameters(), strict=True)
    for (name, value), (_, reference) in pairs:
        assert torch.equal(value, reference), name
    assert torch.equal(untrained.codes, trained.codes)
    torch.manual_seed(11)
    assert torch.equal(stream, torch.rand(3))


@EVERY_VARIANT
def test_one_hot_soft_codes_reproduce_hard_codes(variant, codes):
    model = make_model(variant, codes)
    histories = ragged_histories([8, 5, 2], width=8, seed=7)
    next_items = torch.tensor([histories[0, -1].item(), 3, 11])
    soft_items = torch.cat([histories[0, -3:], histories[1, -1:], torch.tensor([3, 11])]).unique()
    one_hot = torch.nn.functional.one_hot(codes[soft_items], MAX_VOCAB).float()  # (M, L, V)
    with torch.no_grad():
        hard = model.next_item_log_probs(histories, next_items)
        model.soft_codes = SoftCodes(soft_items, one_hot)
        soft = model.next_item_log_probs(histories, next_items)
    torch.testing.assert_close(soft, hard, atol=1e-6, rtol=1e-6)


@EVERY_VARIANT
def test_gradient_reaches_soft_codes_of_used_items_and_every_parameter(variant, codes):
    model = make_model(variant, codes)
    histories = ragged_histories([8, 6], width=8, seed=9)
    used_in_history, used_as_target = int(histories[0, -1]), int(histories[1, -1] + 1) % N_ITEMS
    unused = next(i for i in range(N_ITEMS) if i not in set(histories.flatten().tolist()) | {used_as_target})
    soft_items = torch.tensor([used_in_history, used_as_target, unused])
    logits = torch.randn(3, N_LEVELS, MAX_VOCAB).masked_fill(~model.vocab_mask, float("-inf"))
    probs = logits.softmax(-1).requires_grad_()
    model.soft_codes = SoftCodes(soft_items, probs)
    next_items = torch.tensor([5, used_as_target])
    log_probs = model.next_item_log_probs(histories, next_items)
    targets = codes[next_items]  # (B, L)
    log_probs.gather(2, targets[..., None]).sum().backward()
    assert probs.grad[0].abs().sum() > 0  # soft item inside a history
    assert probs.grad[1, : N_LEVELS - 1].abs().sum() > 0  # soft target in the teacher-forced decoder input
    assert torch.equal(probs.grad[2], torch.zeros_like(probs.grad[2]))  # appears nowhere
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def chain_task(n_sequences: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """Sequences (n, length) where the next item is always (7 * previous + 3) mod N_ITEMS."""
    items = [torch.randint(0, N_ITEMS, (n_sequences,), generator=generator)]
    for _ in range(length - 1):
        items.append((7 * items[-1] + 3) % N_ITEMS)
    return torch.stack(items, dim=1)


def target_log_likelihood(model, sequences: torch.Tensor) -> float:
    """Mean over rows of log p(last item's SID | the items before it)."""
    model.eval()
    with torch.no_grad():
        log_probs = model.next_item_log_probs(sequences[:, :-1], sequences[:, -1])
    targets = model.codes[sequences[:, -1]]  # (B, L)
    return log_probs.gather(2, targets[..., None]).sum(dim=(1, 2)).mean().item()


@EVERY_VARIANT
def test_training_learns_a_deterministic_next_item_rule(variant, codes):
    model = make_model(variant, codes)
    generator = torch.Generator().manual_seed(11)
    held_out = chain_task(64, 5, generator)
    before = target_log_likelihood(model, held_out)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(40):
        model.train()
        batch = chain_task(64, 5, generator)
        if model.batch_kind == "sequence":
            log_probs = model.sequence_log_probs(batch)[:, 1:]  # (B, T - 1, L, V)
            targets = model.codes[batch[:, 1:]]
        else:
            log_probs = model.next_item_log_probs(batch[:, :-1], batch[:, -1])
            targets = model.codes[batch[:, -1]]
        loss = -log_probs.gather(-1, targets[..., None]).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = target_log_likelihood(model, held_out)
    # chance is -(3 log 8 + log 4) = -7.6 nats (1 in 2048 SIDs); learning the rule must gain > 5 nats
    # (18 runs: 3 code tables x 2 seeds x 3 variants gained 6.6-8.1 nats and ended at -0.1 to -1.5)
    assert before < -6.0
    assert after > -2.5 and after - before > 5.0, (before, after)


def test_registry_errors_list_the_choices(codes):
    with pytest.raises(UserError, match="causal, tiger"):
        build_model("gpt", codes, VOCAB_SIZES)
    with pytest.raises(UserError, match="paper, small, tiny"):
        model_from_preset("tiger", "huge", codes, VOCAB_SIZES)
    with pytest.raises(UserError, match="n_layers"):
        build_model("causal", codes, VOCAB_SIZES, n_layer=3)
    with pytest.raises(UserError, match="dropout"):
        build_model("tiger", codes, VOCAB_SIZES, dropout=1.5)
    with pytest.raises(UserError, match="position_encoding"):
        build_model("tiger", codes, VOCAB_SIZES, position_encoding="rotary")


def test_relative_buckets_are_exact_near_logarithmic_far_and_split_by_direction():
    offsets = torch.arange(-300, 301)
    buckets = relative_position_bucket(offsets, n_buckets=32, max_distance=128)
    before, after = buckets[offsets <= 0].flip(0), buckets[offsets > 0]  # by growing distance
    assert torch.equal(before[:8], torch.arange(8)) and torch.equal(after[:7], torch.arange(17, 24))
    assert (before.diff() >= 0).all() and (after.diff() >= 0).all()
    assert set(before.tolist()) == set(range(16)) and set(after.tolist()) == set(range(17, 32))
    assert (before[128:] == 15).all() and (after[127:] == 31).all()


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_config_dict_rebuilds_the_same_architecture(backbone, codes):
    for preset in model_presets(backbone):
        model = model_from_preset(backbone, preset, codes, VOCAB_SIZES)
        rebuilt = build_model(backbone, codes, VOCAB_SIZES, **model.config_dict())
        assert rebuilt.config == model.config
        assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
            k: v.shape for k, v in model.state_dict().items()
        }
