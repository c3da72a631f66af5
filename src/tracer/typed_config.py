"""The one typed config loader: a mapping (YAML file, JSON, ``--set`` pairs) -> a config dataclass.

Every config of the project is a dataclass loaded by :func:`load_config`, which

- refuses unknown keys, naming them, the valid ones and the file;
- converts each value to its field's annotated type (``int``, ``float``, ``bool``, ``str``, ``X | None``,
  ``list``/``tuple`` of those (a single value is a list of one), ``dict``, a nested config dataclass);
  YAML reads ``1e-4`` (no dot) as a string, so numeric strings count as numbers; a float must be finite;
- checks the ranges a field declares with :func:`setting` (``gt``, ``ge``, ``le``, ``lt``, ``choices``).

Every failure is a :class:`tracer.errors.UserError` (one line, exit 2) that names the key and the file.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from tracer.errors import UserError

T = TypeVar("T")
_BOUNDS = {"gt": (lambda v, b: v > b, ">"), "ge": (lambda v, b: v >= b, ">="),
           "lt": (lambda v, b: v < b, "<"), "le": (lambda v, b: v <= b, "<=")}  # fmt: skip


def setting(
    default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING, **checks
) -> Any:
    """A dataclass field with range checks: ``gt``/``ge``/``lt``/``le`` (numbers; ``None`` is always
    allowed for optional fields), ``choices`` (a tuple of allowed values) and ``infinite=True`` (a float
    that may be ``.inf``, e.g. "no limit"; NaN is never allowed)."""
    unknown = set(checks) - {*_BOUNDS, "choices", "infinite"}
    if unknown:
        raise TypeError(f"unknown check(s) {sorted(unknown)}")
    return dataclasses.field(default=default, default_factory=default_factory, metadata=checks)


def read_yaml(path: str | Path, what: str = "config file") -> Any:
    """The parsed YAML of ``path``; UserError when it is missing or not valid YAML."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path} not found: give an existing YAML file")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        reason = str(error).splitlines()[0]
        raise UserError(f"{path} is not valid YAML ({reason}): fix its syntax") from None


def load_config(cls: type[T], values: Any, source: str) -> T:
    """``cls`` built from the mapping ``values`` (read from ``source``), converted and range-checked."""
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise UserError(f"{source} must be a mapping of key: value, got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise UserError(
            f"{source}: unknown key(s) {', '.join(map(str, unknown))}; valid keys: {', '.join(fields)}"
        )
    missing = [name for name, f in fields.items() if name not in values and _required(f)]
    if missing:
        raise UserError(f"{source}: missing key(s) {', '.join(missing)}")
    hints = typing.get_type_hints(cls)
    typed = {
        key: _convert(value, hints[key], f"{source}: {key}", fields[key].metadata.get("infinite", False))
        for key, value in values.items()
    }
    config = cls(**typed)
    check_ranges(config, source)
    return config


def check_ranges(config: Any, source: str) -> None:
    """Check every field of ``config`` against the checks its :func:`setting` declares."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if value is None:
            continue
        choices = f.metadata.get("choices")
        if choices is not None and value not in choices:
            allowed = ", ".join(map(str, choices))
            raise UserError(f"{source}: {f.name} must be one of {allowed}, got {value!r}")
        for name, (holds, symbol) in _BOUNDS.items():
            if name in f.metadata and not holds(value, f.metadata[name]):
                raise UserError(f"{source}: {f.name} must be {symbol} {f.metadata[name]}, got {value!r}")


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _convert(value: Any, hint: Any, where: str, infinite: bool = False) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _convert(value, option, where, infinite)
            except UserError as error:
                errors.append(error)
        raise errors[0]
    if dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else load_config(hint, value, where)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise UserError(f"{where} must be true or false, got {value!r}")
    if hint in (int, float):
        return _number(value, hint, where, infinite)
    if hint is str:
        if isinstance(value, str):
            return value
        raise UserError(f"{where} must be a string, got {value!r}")
    if origin in (list, tuple) or hint in (list, tuple):
        if isinstance(value, (str, int, float)):
            value = [value]  # a single value is a list of one
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where} must be a list, got {value!r}")
        item = args[0] if args else Any
        converted = [_convert(v, item, where) for v in value]
        return tuple(converted) if (origin or hint) is tuple else converted
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise UserError(f"{where} must be a mapping, got {value!r}")
        if len(args) == 2:
            return {key: _convert(item, args[1], f"{where}.{key}") for key, item in value.items()}
        return dict(value)
    return value


def _number(value: Any, kind: type, where: str, infinite: bool = False) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UserError(f"{where} must be a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise UserError(f"{where} must be a number, got {value!r}") from None
    if math.isnan(number) or (math.isinf(number) and not (infinite and kind is float and number > 0)):
        raise UserError(f"{where} must be a finite number, got {value!r}")
    if kind is int:
        if not number.is_integer():
            raise UserError(f"{where} must be a whole number, got {value!r}")
        return int(number)
    return value if isinstance(value, float) else number
