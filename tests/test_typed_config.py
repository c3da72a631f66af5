"""The one typed config loader: conversions, refusals naming key and source, range checks."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tracer.errors import UserError
from tracer.typed_config import load_config, read_yaml, setting


@dataclass
class Inner:
    width: int = setting(4, ge=1)


@dataclass
class Example:
    lr: float = setting(gt=0)
    steps: int = setting(10, ge=1)
    clip: float = setting(1.0, gt=0, infinite=True)
    cap: int | None = setting(None, ge=1)
    mode: str = setting("a", choices=("a", "b"))
    flag: bool = False
    sizes: tuple[int, ...] = (1,)
    groups: dict[str, list[str]] = field(default_factory=dict)
    inner: Inner = field(default_factory=Inner)


def test_values_are_converted_to_the_annotated_types():
    config = load_config(
        Example,
        {
            "lr": "1e-3",
            "steps": 5.0,
            "clip": "inf",
            "cap": None,
            "sizes": 3,
            "groups": {"x": "y"},
            "inner": {"width": "8"},
        },  # fmt: skip
        "example.yaml",
    )
    assert config.lr == 1e-3 and isinstance(config.lr, float)
    assert config.steps == 5 and isinstance(config.steps, int)
    assert config.clip == float("inf") and config.cap is None
    assert config.sizes == (3,) and config.groups == {"x": ["y"]} and config.inner == Inner(8)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"lr": 1, "stepz": 1}, "example.yaml: unknown key(s) stepz; valid keys: lr, steps"),
        ({}, "example.yaml: missing key(s) lr"),
        ({"lr": "nan"}, "example.yaml: lr must be a finite number"),
        ({"lr": float("inf")}, "example.yaml: lr must be a finite number"),
        ({"lr": 0}, "example.yaml: lr must be > 0, got 0.0"),
        ({"lr": 1, "steps": 2.5}, "example.yaml: steps must be a whole number"),
        ({"lr": 1, "steps": 0}, "example.yaml: steps must be >= 1"),
        ({"lr": 1, "clip": float("-inf")}, "example.yaml: clip must be a finite number"),
        ({"lr": 1, "cap": 0}, "example.yaml: cap must be >= 1"),
        ({"lr": 1, "mode": "c"}, "example.yaml: mode must be one of a, b"),
        ({"lr": 1, "flag": "yes"}, "example.yaml: flag must be true or false"),
        ({"lr": True}, "example.yaml: lr must be a number"),
        ({"lr": 1, "inner": {"width": 0}}, "example.yaml: inner: width must be >= 1"),
        ({"lr": 1, "groups": []}, "example.yaml: groups must be a mapping"),
    ],
)
def test_bad_values_are_refused_naming_the_key_and_the_source(values, message):
    with pytest.raises(UserError) as refused:
        load_config(Example, values, "example.yaml")
    assert message in str(refused.value)


def test_read_yaml_names_the_file_when_it_is_missing_or_broken(tmp_path):
    with pytest.raises(UserError, match="preset file .*nope.yaml not found"):
        read_yaml(tmp_path / "nope.yaml", "preset file")
    (tmp_path / "bad.yaml").write_text("a: [1,\n")
    with pytest.raises(UserError, match="bad.yaml is not valid YAML"):
        read_yaml(tmp_path / "bad.yaml")
