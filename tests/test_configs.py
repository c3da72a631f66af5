"""Every YAML file in configs/ against the typed config it loads into: the same keys, loadable, and
one source for each default (the YAML; a dataclass default that remains equals the YAML)."""

from __future__ import annotations

import dataclasses

import pytest

from tracer.errors import UserError
from tracer.model.registry import CONFIGS, make_config, model_presets
from tracer.pipelines.bench_config import load_bench_config
from tracer.resources import config_dir
from tracer.training.config import TrainConfig, load_preset, preset_names
from tracer.training.sasrec_train import SASRecSettings
from tracer.typed_config import read_yaml
from tracer.unlearning.base import EraseConfig, build_config, method_settings
from tracer.unlearning.methods import METHODS

UNLEARNING = config_dir() / "unlearning"
ABLATIONS = sorted(name for name in METHODS if name.startswith("tracer-no-"))
# the files that name tracer-anchored.yaml as their base
ANCHORED_BASED = [*ABLATIONS, "tracer-paper", "tracer-deep"]


def field_names(config_class) -> set[str]:
    return {f.name for f in dataclasses.fields(config_class)}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_each_method_yaml_sets_every_field_of_its_config(name):
    cls = METHODS[name]
    assert set(method_settings(name, cls.config_class)) == field_names(cls.config_class)
    build_config(cls, {})  # and the values pass the type and range checks


def test_the_erasure_yaml_files_are_the_methods_and_their_shared_base():
    files = {path.stem for path in UNLEARNING.glob("*.yaml")} - {"sweeps"}
    assert files == set(METHODS) | {"erase"}
    assert set(read_yaml(UNLEARNING / "erase.yaml")) == field_names(EraseConfig)
    bases = {name: "tracer-anchored" for name in ANCHORED_BASED} | {"tracer": "tracer-deep"}
    for name in METHODS:
        assert read_yaml(UNLEARNING / f"{name}.yaml")["base"] == bases.get(name, "erase")


def test_the_default_tracer_is_the_deep_setting_and_the_ablations_keep_the_anchored_one():
    """`tracer` is `tracer-deep`'s setting (issue 23's cells measured it); the ablations and the
    paper's method stay one change away from `tracer-anchored`, the setting their notes measured."""
    tracer, deep, anchored = (
        method_settings(n, METHODS[n].config_class) for n in ("tracer", "tracer-deep", "tracer-anchored")
    )
    assert tracer == deep
    assert not tracer["use_mask"] and tracer["repair_steps"] > 0 and tracer["kl_without_concept"]
    assert anchored["use_mask"] and anchored["repair_steps"] == 0 and not anchored["kl_without_concept"]


def test_erasure_config_dataclasses_carry_no_competing_defaults():
    for config_class in {cls.config_class for cls in METHODS.values()}:
        with_default = [
            f.name
            for f in dataclasses.fields(config_class)
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        ]
        assert with_default == [], (config_class.__name__, with_default)


def test_each_ablation_changes_one_setting_of_the_anchored_tracer():
    anchored = method_settings("tracer-anchored", METHODS["tracer-anchored"].config_class)
    for name in ABLATIONS:
        ablated = method_settings(name, METHODS[name].config_class)
        assert len({key for key in anchored if ablated[key] != anchored[key]}) == 1, name


def test_sweep_spaces_name_methods_and_their_settings():
    for method, grid in read_yaml(UNLEARNING / "sweeps.yaml")["spaces"].items():
        assert set(grid) <= field_names(METHODS[method].config_class), method


@pytest.mark.parametrize("backbone", sorted(CONFIGS))
def test_model_presets_list_every_field_and_the_dataclass_defaults_equal_one(backbone):
    presets = model_presets(backbone)
    for name, values in presets.items():
        assert set(values) == field_names(CONFIGS[backbone]), name
        make_config(backbone, **values)
    default = {"causal": "small", "tiger": "paper"}[backbone]
    assert dataclasses.asdict(CONFIGS[backbone]()) == presets[default]


@pytest.mark.parametrize("name", preset_names())
def test_training_presets_use_known_keys_and_load(name):
    raw = read_yaml(config_dir() / f"{name}.yaml")
    train_keys = field_names(TrainConfig) - {"backbone", "model_preset", "model_overrides"}
    assert set(raw.get("train") or {}) <= train_keys
    config = load_preset(name)
    assert config.model_preset in model_presets(config.backbone)
    assert set(config.model_overrides) <= field_names(CONFIGS[config.backbone])


def test_the_sasrec_yaml_sets_every_setting_and_equals_the_defaults():
    raw = read_yaml(config_dir() / "sasrec.yaml")
    settings = SASRecSettings()
    assert set(raw["model"]) == field_names(type(settings.model)) - {"n_items"}  # n_items: from the data
    assert set(raw["train"]) == field_names(type(settings.train))
    assert SASRecSettings.from_dict(raw).to_dict() == settings.to_dict()


def typed_loader(path):
    """The loader of a file in configs/ (the unlearning files and models.yaml are tested above)."""
    raw = read_yaml(path)
    if "backbone" in raw:
        return load_preset
    if "datasets" in raw:
        return load_bench_config
    if path.stem.startswith("sasrec"):
        return SASRecSettings.from_yaml
    return None


@pytest.mark.parametrize("path", sorted(config_dir().glob("*.yaml")), ids=lambda path: path.stem)
def test_every_config_file_loads_through_its_typed_loader(path):
    if path.name == "models.yaml":
        return
    loader = typed_loader(path)
    assert loader is not None, f"{path} is read by no typed config"
    loader(path)


def test_a_method_file_with_an_unknown_key_or_a_base_loop_is_refused(tmp_path, monkeypatch):
    import tracer.unlearning.base as base

    monkeypatch.setattr(base, "config_file", lambda *parts: tmp_path.joinpath(*parts))
    (tmp_path / "unlearning").mkdir()
    (tmp_path / "unlearning" / "a.yaml").write_text("base: b\nlr: 0.1\n")
    (tmp_path / "unlearning" / "b.yaml").write_text("base: a\n")
    with pytest.raises(UserError, match=r"base 'a' makes a loop \(a -> b -> a\)"):
        method_settings("a", EraseConfig)
    (tmp_path / "unlearning" / "b.yaml").write_text("stepz: 3\n")
    with pytest.raises(UserError, match=r"b.yaml: unknown key\(s\) stepz"):
        method_settings("a", EraseConfig)
