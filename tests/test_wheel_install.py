"""A built wheel is a complete package: installed without -e into a fresh virtualenv, its `tracer`
command finds the shipped presets and trains and erases from a directory outside the repository.

Nothing is downloaded: the wheel is built without build isolation, installed with --no-deps, and the
fresh environment reaches this environment's dependencies (torch, ...) through a .pth file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import tomllib
from setuptools import find_packages

REPO = Path(__file__).resolve().parents[1]
CONFIG_PACKAGES = {"tracer.configs", "tracer.configs.unlearning"}


def test_pyproject_lists_every_package():
    """The explicit package list (needed to map configs/ onto tracer.configs) misses nothing."""
    listed = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert set(listed) == set(find_packages(REPO / "src")) | CONFIG_PACKAGES


def build_wheel(root: Path) -> Path:
    """Build from a copy of the sources, so that nothing is written into the repository."""
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(REPO / "src" / "tracer", source / "src" / "tracer", ignore=ignore)
    shutil.copytree(REPO / "configs", source / "configs", ignore=ignore)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    dist = root / "dist"
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(source)],
                   check=True, capture_output=True)  # fmt: skip
    (wheel,) = dist.glob("tracer_rec-*.whl")
    return wheel


def install_into_fresh_venv(wheel: Path, venv: Path) -> Path:
    """A venv without pip, the wheel installed by this pip (no -e, no dependencies), then this
    environment's site-packages appended to its path; returns the venv's bin folder."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    bin_dir = venv / "bin"
    python = str(bin_dir / "python")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", "--python", python]
    subprocess.run([*pip, "install", "--no-deps", str(wheel)], check=True, capture_output=True)
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = subprocess.run([python, "-c", purelib], check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "outer_site_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return bin_dir


@pytest.mark.skipif(sys.platform == "win32", reason="venv layout differs on Windows")
def test_wheel_installs_and_runs_train_and_erase_from_elsewhere(tmp_path, world):
    bin_dir = install_into_fresh_venv(build_wheel(tmp_path), tmp_path / "venv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ""}

    def run(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run(args, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        return done

    resources = "import tracer.resources as r; print(r.__file__, r.config_dir())"
    where = run(str(bin_dir / "python"), "-c", resources)
    module_file, config_dir = where.stdout.split()
    assert Path(module_file).is_relative_to(tmp_path / "venv")  # the wheel, not the repository
    assert Path(config_dir).is_relative_to(tmp_path / "venv")
    assert (Path(config_dir) / "unlearning" / "tracer.yaml").is_file()

    model = elsewhere / "model"
    run(str(bin_dir / "tracer"), "train", str(world.data_dir), str(world.sids_dir), "--preset", "tiny",
        "--out", str(model), "--max-epochs", "1")  # fmt: skip
    erased = elsewhere / "erased"
    run(str(bin_dir / "tracer"), "erase", str(model), "--data", str(world.data_dir), "--concept", "Horror",
        "--method", "tracer", "--out", str(erased), "--set", "steps=3")  # fmt: skip
    assert (erased / "model.safetensors").is_file()
    assert (erased / "manifest.json").is_file()
