"""Saving and loading backbones: exact round trips, clear errors on broken folders."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from tracer.errors import UserError
from tracer.model.base import PAD_ITEM
from tracer.model.checkpoint import load_model, read_model_config, save_model, state_dict_sha256
from tracer.model.registry import BACKBONES, model_from_preset

VOCAB_SIZES = [8, 8, 8, 4]
N_ITEMS = 30


def random_codes(seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(0, v, (N_ITEMS,), generator=generator) for v in VOCAB_SIZES], dim=1)


@pytest.fixture(params=sorted(BACKBONES))
def model(request):
    torch.manual_seed(0)
    return model_from_preset(request.param, "tiny", random_codes(0), VOCAB_SIZES, d_model=24).eval()


def scores(model) -> torch.Tensor:
    histories = torch.tensor([[PAD_ITEM, PAD_ITEM, 3, 4, 5], [1, 2, 3, 4, 5]])
    with torch.no_grad():
        return model.next_item_log_probs(histories, torch.tensor([6, 7]))


def test_round_trip_restores_weights_codes_config_and_outputs(model, tmp_path):
    model.set_codes(random_codes(1))  # a changed SID table (as after erasure) must travel with the weights
    save_model(tmp_path / "model", model, extra={"seed": 7, "dataset": "toy"})
    loaded = load_model(tmp_path / "model")
    assert type(loaded) is type(model) and not loaded.training
    assert torch.equal(loaded.codes, random_codes(1))
    assert state_dict_sha256(loaded) == state_dict_sha256(model)
    assert torch.equal(scores(loaded), scores(model))
    config = read_model_config(tmp_path / "model")
    assert config["model"] == model.config_dict() and config["model"]["d_model"] == 24
    assert (config["vocab_sizes"], config["n_items"], config["seed"]) == (VOCAB_SIZES, N_ITEMS, 7)
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["config.json", "model.safetensors"]


def test_state_dict_hash_sees_a_single_changed_weight(model):
    before = state_dict_sha256(model)
    with torch.no_grad():
        model.level_embeddings[2].weight[1, 0] += 1e-3
    assert state_dict_sha256(model) != before


def test_corrupt_or_missing_files_raise_user_errors_naming_the_folder(model, tmp_path):
    folder = tmp_path / "broken"
    with pytest.raises(UserError, match="broken"):
        load_model(folder)
    save_model(folder, model)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    with pytest.raises(UserError, match="broken"):
        load_model(folder)
    weights.write_bytes(b"not a safetensors file at all")
    with pytest.raises(UserError, match="broken"):
        load_model(folder)
    weights.unlink()
    with pytest.raises(UserError, match="broken"):
        load_model(folder)
    (folder / "config.json").write_text("{ not json")
    with pytest.raises(UserError, match="broken"):
        load_model(folder)


def edit_config(folder, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    config["model"].update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def strip_config_hash(folder) -> None:
    """Rewrite the weights without metadata: a model saved before the config hash existed."""
    weights = folder / "model.safetensors"
    save_file(load_file(str(weights)), str(weights))


@pytest.mark.parametrize("change", [{"d_model": 16}, {"n_heads": 4}, {"dropout": 0.3}])
def test_an_edited_architecture_is_refused(model, tmp_path, change):
    """config.json is bound to the weights by a hash: even an edit that keeps every tensor shape
    (n_heads, which silently changed the recommendations) is refused."""
    save_model(tmp_path, model)
    edit_config(tmp_path, **change)
    with pytest.raises(UserError, match="config.json was edited"):
        load_model(tmp_path)


def test_models_saved_before_the_hash_still_load_and_shapes_are_still_checked(model, tmp_path):
    save_model(tmp_path, model)
    strip_config_hash(tmp_path)
    assert state_dict_sha256(load_model(tmp_path)) == state_dict_sha256(model)
    edit_config(tmp_path, d_model=16)
    with pytest.raises(UserError, match="does not match"):
        load_model(tmp_path)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(model, tmp_path, value):
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] = value
    save_model(tmp_path, model)
    with pytest.raises(UserError, match="NaN or infinite"):
        load_model(tmp_path)


def test_extra_keys_may_not_overwrite_the_checkpoint_keys(model, tmp_path):
    with pytest.raises(ValueError, match="backbone"):
        save_model(tmp_path, model, extra={"backbone": "other"})
