"""`tracer-deep` (docs/method.md §4.11): the anchored setting with exactly the depth levers changed, a
registered method that erases end to end and repairs after the commit, and the default `tracer`."""

from __future__ import annotations

import pytest

from tests.helpers.erasure_world import write_world
from tracer.cli import main
from tracer.io import read_json
from tracer.unlearning.methods import method_class
from tracer.unlearning.runner import method_defaults
from tracer.unlearning.tracer import Tracer

pytestmark = pytest.mark.usefixtures("one_thread")

# the levers of the depth-against-utility frontier, as tracer-deep sets them
DEPTH_LEVERS = {
    "use_mask": False,
    "kl_without_concept": True,
    "kl_branch_shares": True,
    "forget_kl": 3.0,
    "lr": 6e-4,
    "repair_steps": 50,
    "repair_windows": 16,
}


def test_it_is_the_anchored_tracer_with_exactly_the_depth_levers_changed():
    cls = method_class("tracer-deep")
    assert issubclass(cls, Tracer) and cls.name == "tracer-deep"
    deep, anchored = method_defaults("tracer-deep"), method_defaults("tracer-anchored")
    assert {key for key in anchored if deep[key] != anchored[key]} == set(DEPTH_LEVERS)
    assert {key: deep[key] for key in DEPTH_LEVERS} == DEPTH_LEVERS
    assert method_defaults("tracer") == deep  # the default is the setting issue 23's cells measured


def test_it_erases_end_to_end_and_repairs_after_the_commit(tmp_path):
    world = write_world(tmp_path / "w")
    out = tmp_path / "deep"
    args = ["erase", str(world.model_dir), "--data", str(world.data_dir), "--concept", "Horror",
            "--method", "tracer-deep", "--out", str(out)]  # fmt: skip
    args += ["--set", "steps=3", "--set", "repair_steps=2"]
    assert main(args) == 0
    manifest = read_json(out / "manifest.json")
    assert manifest["method"] == "tracer-deep" and manifest["config"]["use_mask"] is False
    assert len(manifest["summary"]["repair_losses"]) == 2
