"""Files shipped inside the package: the YAML presets of ``configs/`` (package ``tracer.configs``).

A clone maps ``configs/`` at the repository root onto ``tracer.configs``; a wheel carries it under
``tracer/configs/``. Either way the files are found through the package, never the working directory.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def config_dir() -> Path:
    """The folder of the shipped presets (``configs/``)."""
    return Path(str(files("tracer.configs")))


def config_file(*parts: str) -> Path:
    """A shipped preset by its path under ``configs/``, e.g. ``config_file("unlearning", "tracer.yaml")``."""
    return config_dir().joinpath(*parts)
