"""`tracer-paper`: TRACER's Eq. 10 as written (docs/method.md §4.10) is a registered method whose own
file switches every extension of §8 off, and it erases end to end on the tiny world."""

from __future__ import annotations

import pytest

from tracer.cli import main
from tracer.io import read_json
from tracer.pipelines.bench_config import parse_bench_config
from tracer.resources import config_file
from tracer.typed_config import read_yaml
from tracer.unlearning.base import build_config
from tracer.unlearning.methods import method_class
from tracer.unlearning.runner import method_defaults
from tracer.unlearning.tracer import Tracer

pytestmark = pytest.mark.usefixtures("one_thread")

# docs/method.md §8: each extension and the value that switches it off (dropout *off* is the extension)
EXTENSIONS_OFF = {
    "retain_kl": 0.0,
    "kl_without_concept": False,
    "kl_branch_shares": False,
    "dropout": True,
    "coherence_anchor": False,
    "forget_kl": 0.0,
    "forget_floor": None,
    "distil_steps": 0,
    "sharpness_rho": 0.0,
    "repair_steps": 0,
    "saliency_share": 1.0,
    "project_forget": False,
    "window_retain": 0.0,
}


def test_the_method_resolves_to_tracer_with_every_extension_off():
    cls = method_class("tracer-paper")
    assert issubclass(cls, Tracer) and cls.name == "tracer-paper"
    settings = method_defaults("tracer-paper")
    assert {key: settings[key] for key in EXTENSIONS_OFF} == EXTENSIONS_OFF
    tracer = method_defaults("tracer-anchored")
    assert [key for key in ("tau", "lambda2", "lambda3", "lr_phi", "reassign", "use_mask") if
            settings[key] != tracer[key]] == []  # fmt: skip
    assert not cls.wants_reference(build_config(cls, {}))  # no frozen parent: nothing anchors to it


def test_its_file_sets_every_extension_itself():
    """Explicit, so that switching an extension on in tracer-anchored.yaml never reaches the paper's
    method."""
    raw = read_yaml(config_file("unlearning", "tracer-paper.yaml"))
    assert raw["base"] == "tracer-anchored"
    assert {key: raw.get(key, "unset") for key in EXTENSIONS_OFF} == EXTENSIONS_OFF


def test_a_bench_grid_accepts_it():
    config = parse_bench_config(
        {"datasets": {"ml-100k": None}, "concepts": {"ml-100k": ["Horror"]}, "methods": ["tracer-paper"]}
    )
    assert config.all_methods == ["original", "retrain", "tracer-paper"]


def test_it_erases_end_to_end_and_the_manifest_records_it(world, tmp_path):
    out = tmp_path / "paper"
    args = ["erase", str(world.model_dir), "--data", str(world.data_dir), "--concept", "Horror",
            "--method", "tracer-paper", "--out", str(out), "--set", "steps=3"]  # fmt: skip
    assert main(args) == 0
    manifest = read_json(out / "manifest.json")
    assert manifest["method"] == "tracer-paper" and manifest["chain"][-1]["method"] == "tracer-paper"
    assert {key: manifest["config"][key] for key in EXTENSIONS_OFF} == EXTENSIONS_OFF
    assert manifest["summary"]["concept_items"] == 6
