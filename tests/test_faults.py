"""The fault suite (issue 27): bad inputs and faults a hostile but ordinary user can produce.

Every case runs one command on a fresh copy of the tiny erasure world and asserts the promises:
exit 2, one line on stderr (what a terminal shows; progress bars draw with carriage returns) and no
traceback; every file of the world (parent model, data, SIDs, sibling files) byte-identical; and no
output, staging or lock file left behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from tracer.cli import main
from tracer.outputs import claim_folder, hold_claim

pytestmark = pytest.mark.usefixtures("one_thread")
REPO = Path(__file__).resolve().parents[1]


@dataclass
class W:
    """A writable copy of the world: ``root`` holds data/, sids/, model/, raw/ and a sibling file."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def sids(self) -> Path:
        return self.root / "sids"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def out(self) -> Path:
        return self.root / "out"


@pytest.fixture
def w(world, tmp_path) -> W:
    root = tmp_path / "w"
    for name in ("data", "sids", "model"):
        shutil.copytree(getattr(world, f"{name}_dir"), root / name)
    shutil.copytree(world.data_dir.parent / "raw", root / "raw")
    (root / "notes.txt").write_text("a sibling file the user cares about\n")
    return W(root)


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` (folders too, so that an empty leftover folder shows) -> its hash."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        if path.is_file()
        else "dir"
        for path in sorted(root.rglob("*"))
    }


def assert_refused(capsys, root: Path, argv: list[str], message: str) -> str:
    """Run ``tracer argv``: exit 2, one visible stderr line containing ``message``, nothing changed."""
    before = snapshot(root)
    capsys.readouterr()
    code = main([str(part) for part in argv])
    err = capsys.readouterr().err
    line = err.split("\r")[-1]  # what the terminal shows once progress bars have been cleared
    assert code == 2, err
    assert err.endswith("\n") and err.count("\n") == 1 and line.startswith("error: "), err
    assert "Traceback" not in err
    assert message in line, line
    assert snapshot(root) == before, "a file changed, or an output/partial/lock was left behind"
    return line


# -- the commands -------------------------------------------------------------------------------------
def erase(w: W, *extra, method: str = "ga", out: Path | None = None, concept: str = "Horror") -> list:
    return ["erase", w.model, "--data", w.data, "--concept", concept, "--method", method,
            "--out", out or w.out, "--set", "steps=2", *extra]  # fmt: skip


def recommend(w: W, *extra, out: Path | None = None) -> list:
    return ["recommend", w.model, "--data", w.data, "--k", "5", "--device", "cpu", "--out",
            out or w.root / "recs.parquet", *extra]  # fmt: skip


def evaluate(w: W, *extra, out: Path | None = None) -> list:
    return ["evaluate", w.model, "--data", w.data, "--k-max", "5", "--device", "cpu", "--out",
            out or w.root / "metrics.json", *extra]  # fmt: skip


def sids(w: W, *extra, out: Path | None = None) -> list:
    return ["sids", w.data, "--vectors", w.sids / "item_vectors.npy", "--codebook-size", "4", "--out",
            out or w.out, *extra]  # fmt: skip


def prepare(w: W, *extra, out: Path | None = None) -> list:
    return ["prepare", "--dataset", "ml-100k", "--path", w.root / "raw", "--out", out or w.out, *extra]


def train(w: W, *extra, preset: str = "tiny", out: Path | None = None) -> list:
    return ["train", w.data, w.sids, "--preset", preset, "--out", out or w.out, "--max-epochs", "1",
            "--device", "cpu", *extra]  # fmt: skip


# -- mutations of the world ---------------------------------------------------------------------------
def rewrite(path: Path, change: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    change(pd.read_parquet(path)).to_parquet(path, index=False)


def set_cell(path: Path, column: str, row: int, value) -> None:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[row, column] = value
        return frame

    rewrite(path, change)


def duplicate_first(path: Path, column: str) -> None:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[1, column] = frame.loc[0, column]
        return frame

    rewrite(path, change)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def edit_weights(folder: Path, change: Callable[[dict], None]) -> None:
    """Change tensors of ``folder/model.safetensors`` in place, keeping its metadata (the config hash)."""
    weights = folder / "model.safetensors"
    with safe_open(str(weights), framework="pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(weights))
    change(tensors)
    save_file(tensors, str(weights), metadata=metadata)


def first_weight(tensors: dict) -> str:
    return next(name for name, value in tensors.items() if value.is_floating_point() and value.dim() == 2)


def poison(folder: Path, value: float) -> None:
    def change(tensors: dict) -> None:
        tensors[first_weight(tensors)].view(-1)[0] = value

    edit_weights(folder, change)


def nan_vectors(path: Path) -> None:
    vectors = np.load(path)
    vectors[0, 0] = np.nan
    np.save(path, vectors)


def edit_model_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    config["model"].update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def duplicate_sid(folder: Path) -> None:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[1, ["c1", "c2", "dedup"]] = frame.loc[0, ["c1", "c2", "dedup"]].to_numpy()
        return frame

    rewrite(folder / "sids.parquet", change)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# -- the cases: (id, mutate the world and return argv, the words the error line must hold) -------------
CASES: list[tuple[str, Callable[[W], list], str]] = [
    # damaged datasets
    (
        "data-truncated-items",
        lambda w: (truncate(w.data / "items.parquet"), erase(w))[1],
        "not a readable Parquet",
    ),
    (
        "data-garbage-interactions",
        lambda w: (write(w.data / "interactions.parquet", "garbage"), erase(w))[1],
        "not a readable Parquet",
    ),
    (
        "data-empty-test",
        lambda w: (write(w.data / "test.parquet", ""), recommend(w))[1],
        "not a readable Parquet",
    ),
    (
        "data-missing-file",
        lambda w: ((w.data / "valid.parquet").unlink(), erase(w))[1],
        "not a prepared dataset",
    ),
    (
        "data-no-title",
        lambda w: (rewrite(w.data / "items.parquet", lambda f: f.drop(columns="title")), erase(w))[1],
        "lacks column(s) title",
    ),
    (
        "data-no-split",
        lambda w: (rewrite(w.data / "interactions.parquet", lambda f: f.drop(columns="split")), recommend(w))[
            1
        ],
        "lacks column(s) split",
    ),
    (
        "data-timestamp-text",
        lambda w: (
            rewrite(w.data / "interactions.parquet", lambda f: f.astype({"timestamp": str})),
            erase(w),
        )[1],
        "column timestamp must hold integer",
    ),
    (
        "data-test-unknown-item",
        lambda w: (set_cell(w.data / "test.parquet", "item_id", 0, "nope"), recommend(w))[1],
        "refers to item 'nope'",
    ),
    (
        "data-interactions-unknown-item",
        lambda w: (set_cell(w.data / "interactions.parquet", "item_id", 3, "nope"), erase(w))[1],
        "refers to item 'nope'",
    ),
    (
        "data-duplicate-item",
        lambda w: (duplicate_first(w.data / "items.parquet", "item_id"), erase(w))[1],
        "twice",
    ),
    (
        "data-duplicate-user",
        lambda w: (duplicate_first(w.data / "test.parquet", "user_id"), erase(w))[1],
        "lists a user twice",
    ),
    (
        "data-manifest-garbage",
        lambda w: (write(w.data / "manifest.json", "{"), erase(w))[1],
        "not valid JSON",
    ),
    (
        "data-other-catalogue",
        lambda w: (rewrite(w.data / "items.parquet", lambda f: f.iloc[::-1]), erase(w))[1],
        "other items (or another order)",
    ),
    # damaged SID tables
    ("sids-duplicate-sid", lambda w: (duplicate_sid(w.model / "sids"), erase(w))[1], "share a semantic ID"),
    (
        "sids-truncated",
        lambda w: (truncate(w.model / "sids" / "sids.parquet"), recommend(w))[1],
        "not a readable Parquet",
    ),
    (
        "sids-table-json-garbage",
        lambda w: (write(w.model / "sids" / "sid_table.json", "[]"), erase(w))[1],
        "lacks whole numbers",
    ),
    ("train-sids-duplicate-sid", lambda w: (duplicate_sid(w.sids), train(w))[1], "share a semantic ID"),
    # damaged model folders
    (
        "model-nan-weight-erase",
        lambda w: (poison(w.model, float("nan")), erase(w))[1],
        "NaN or infinite values",
    ),
    (
        "model-nan-weight-recommend",
        lambda w: (poison(w.model, float("nan")), recommend(w))[1],
        "NaN or infinite values",
    ),
    (
        "model-inf-weight-evaluate",
        lambda w: (poison(w.model, float("inf")), evaluate(w, "--concept", "Horror"))[1],
        "NaN or infinite values",
    ),
    (
        "model-truncated-weights",
        lambda w: (truncate(w.model / "model.safetensors"), erase(w))[1],
        "unreadable",
    ),
    (
        "model-pickled-weights",
        lambda w: (torch.save({"x": torch.ones(1)}, w.model / "model.safetensors"), recommend(w))[1],
        "unreadable",
    ),
    (
        "model-config-n-heads",
        lambda w: (edit_model_config(w.model, n_heads=4), recommend(w))[1],
        "config.json was edited",
    ),
    (
        "model-config-width",
        lambda w: (edit_model_config(w.model, d_model=16), erase(w))[1],
        "config.json was edited",
    ),
    (
        "model-tokenizer-truncated",
        lambda w: (truncate(w.model / "sids" / "tokenizer.safetensors"), erase(w, method="tracer"))[1],
        "tokenizer.safetensors is unreadable",
    ),
    (
        "model-item-vectors-nan",
        lambda w: (nan_vectors(w.model / "sids" / "item_vectors.npy"), erase(w, method="tracer"))[1],
        "contains NaN or infinite values",
    ),
    (
        "model-manifest-garbage-recommend",
        lambda w: (write(w.model / "manifest.json", "{"), recommend(w))[1],
        "manifest.json is not valid JSON",
    ),
    (
        "model-manifest-garbage-erase",
        lambda w: (write(w.model / "manifest.json", "[1]"), erase(w))[1],
        "is not a manifest",
    ),
    ("model-config-garbage", lambda w: (write(w.model / "config.json", "{"), erase(w))[1], "not valid JSON"),
    ("model-missing", lambda w: (shutil.rmtree(w.model), recommend(w))[1], "not found"),
    (
        "model-overflowing-scores",
        lambda w: (edit_weights(w.model, lambda t: t[first_weight(t)].mul_(1e38)), recommend(w))[1],
        "scores items as NaN or infinite",
    ),
    # settings
    (
        "config-malformed-yaml",
        lambda w: erase(w, "--config", write(w.root / "bad.yaml", "steps: [1,\n")),
        "is not valid YAML",
    ),
    (
        "config-not-a-mapping",
        lambda w: erase(w, "--config", write(w.root / "bad.yaml", "- 1\n")),
        "must be a mapping",
    ),
    ("config-missing", lambda w: erase(w, "--config", w.root / "nope.yaml"), "not found"),
    (
        "config-unknown-key",
        lambda w: erase(w, "--config", write(w.root / "c.yaml", "stepz: 3\n")),
        "c.yaml: unknown key(s) stepz",
    ),
    ("set-lr-nan", lambda w: erase(w, "--set", "lr=nan"), "lr must be a finite number"),
    ("set-lr-inf", lambda w: erase(w, "--set", "lr=.inf"), "lr must be a finite number"),
    ("set-lr-negative", lambda w: erase(w, "--set", "lr=-1"), "lr must be > 0"),
    ("set-lr-zero", lambda w: erase(w, "--set", "lr=0"), "lr must be > 0"),
    ("set-steps-negative", lambda w: erase(w, "--set", "steps=-1"), "steps must be >= 1"),
    ("set-steps-zero", lambda w: erase(w, "--set", "steps=0"), "steps must be >= 1"),
    ("set-steps-fraction", lambda w: erase(w, "--set", "steps=2.5"), "steps must be a whole number"),
    ("set-bool-word", lambda w: erase(w, "--set", "dropout=maybe"), "dropout must be true or false"),
    ("set-unknown-key", lambda w: erase(w, "--set", "betta=1"), "unknown key(s) betta"),
    ("set-no-equals", lambda w: erase(w, "--set", "lr"), "--set expects key=value"),
    (
        "train-preset-lr-nan",
        lambda w: train(w, preset=write(w.root / "p.yaml", "train:\n  lr: .nan\n")),
        "lr must be a finite number",
    ),
    (
        "train-preset-malformed",
        lambda w: train(w, preset=write(w.root / "p.yaml", "train: [\n")),
        "not valid YAML",
    ),
    (
        "train-preset-steps",
        lambda w: train(w, preset=write(w.root / "p.yaml", "train:\n  max_epochs: 0\n")),
        "max_epochs must be >= 1",
    ),
    (
        "recommend-k-beyond-catalogue",
        lambda w: recommend(w, "--k", "100000000"),
        "exceeds the catalogue's 24 items",
    ),
    (
        "recommend-beam-beyond-catalogue",
        lambda w: recommend(w, "--beam", "100000000"),
        "beam width 100000000 exceeds the catalogue's 24 items",
    ),
    (
        "evaluate-k-beyond-catalogue",
        lambda w: evaluate(w, "--k-max", "1000"),
        "exceeds the catalogue's 24 items",
    ),
    ("erase-unknown-device", lambda w: erase(w, "--device", "gpu"), "unknown device 'gpu'"),
    # where erase writes
    ("erase-out-is-parent", lambda w: erase(w, out=w.model), "is the parent model"),
    ("erase-out-parent-via-dotdot", lambda w: erase(w, out=w.data / ".." / "model"), "is the parent model"),
    (
        "erase-out-parent-via-symlink",
        lambda w: (os.symlink(w.model, w.root / "link"), erase(w, out=w.root / "link"))[1],
        "is the parent model",
    ),
    ("erase-out-inside-parent", lambda w: erase(w, out=w.model / "sub"), "lies inside the parent model"),
    (
        "erase-out-parent-sids-overwrite",
        lambda w: erase(w, "--overwrite", out=w.model / "sids"),
        "lies inside the parent model",
    ),
    (
        "erase-out-ancestor-overwrite",
        lambda w: erase(w, "--overwrite", out=w.root),
        "contains the parent model",
    ),
    ("erase-out-is-dataset", lambda w: erase(w, "--overwrite", out=w.data), "is the dataset"),
    ("erase-out-inside-dataset", lambda w: erase(w, out=w.data / "erased"), "lies inside the dataset"),
    ("erase-out-exists", lambda w: (write(w.out / "keep.txt", "mine"), erase(w))[1], "already exists"),
    (
        "erase-overwrite-foreign-folder",
        lambda w: (write(w.out / "keep.txt", "mine"), erase(w, "--overwrite"))[1],
        "replaces only a folder written by tracer",
    ),
    (
        "erase-overwrite-a-file",
        lambda w: erase(w, "--overwrite", out=w.root / "notes.txt"),
        "replaces only a folder written by tracer",
    ),
    ("erase-out-under-a-file", lambda w: erase(w, out=w.root / "notes.txt" / "out"), "not a writable folder"),
    # where recommend and evaluate write
    ("recommend-out-existing-file", lambda w: recommend(w, out=w.root / "notes.txt"), "already exists"),
    (
        "recommend-out-existing-folder",
        lambda w: (write(w.out / "keep.txt", "mine"), recommend(w, out=w.out))[1],
        "is a folder",
    ),
    (
        "recommend-out-inside-other-model",
        lambda w: (shutil.copytree(w.model, w.root / "m2"), recommend(w, out=w.root / "m2" / "r.parquet"))[1],
        "lies inside the model folder",
    ),
    (
        "recommend-out-inside-dataset",
        lambda w: recommend(w, out=w.data / "recs.parquet"),
        "lies inside the dataset",
    ),
    (
        "recommend-out-under-a-file",
        lambda w: recommend(w, out=w.root / "notes.txt" / "r.parquet"),
        "not a writable folder",
    ),
    ("evaluate-out-existing-file", lambda w: evaluate(w, out=w.root / "notes.txt"), "already exists"),
    (
        "evaluate-rankings-in-model",
        lambda w: evaluate(w, "--rankings", w.model / "r.parquet"),
        "lies inside the model",
    ),
    (
        "erase-bad-concept-in-new-folders",
        lambda w: erase(w, out=w.root / "new" / "deep" / "out", concept="Nope"),
        "unknown concept 'Nope'",
    ),
    (
        "sids-vectors-garbage-npy",
        lambda w: sids(w)[:2] + ["--vectors", write(w.root / "v.npy", "garbage")] + sids(w)[4:],
        "not a readable .npy array",
    ),
    (
        "sids-vectors-garbage-parquet",
        lambda w: sids(w)[:2] + ["--vectors", write(w.root / "v.parquet", "garbage")] + sids(w)[4:],
        "not a readable Parquet file",
    ),
    # where sids and prepare write
    ("sids-out-is-dataset", lambda w: sids(w, "--overwrite", out=w.data), "is the dataset"),
    (
        "sids-overwrite-foreign-folder",
        lambda w: (write(w.out / "keep.txt", "mine"), sids(w, "--overwrite"))[1],
        "replaces only a folder written by tracer",
    ),
    (
        "prepare-out-contains-raw",
        lambda w: prepare(w, "--overwrite", out=w.root / "raw"),
        "contains the input",
    ),
    (
        "prepare-overwrite-foreign-folder",
        lambda w: (write(w.out / "keep.txt", "mine"), prepare(w, "--overwrite"))[1],
        "replaces only a folder written by tracer",
    ),
    (
        "attack-out-model-config",
        lambda w: [
            "attack",
            w.model,
            "--data",
            w.data,
            "--concept",
            "Horror",
            "--out",
            w.model / "config.json",
        ],
        "lies inside the model",
    ),
    # where train writes
    ("train-out-is-dataset", lambda w: train(w, out=w.data), "is the dataset"),
    ("train-out-inside-sids", lambda w: train(w, out=w.sids / "run"), "lies inside the SID table"),
    (
        "train-overwrite-foreign-folder",
        lambda w: (write(w.out / "keep.txt", "mine"), train(w, "--overwrite"))[1],
        "replaces only a folder written by tracer",
    ),
    ("train-out-is-a-file", lambda w: train(w, out=w.root / "notes.txt"), "is a file"),
]


@pytest.mark.parametrize(("build", "message"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_fault_exits_2_and_changes_nothing(w, capsys, build, message):
    argv = build(w)
    assert_refused(capsys, w.root, argv, message)


def test_recommend_out_model_weights_is_refused_even_with_overwrite(w, capsys):
    """The weights are never overwritten with Parquet (the case that used to exit 0)."""
    line = assert_refused(
        capsys, w.root, recommend(w, "--overwrite", out=w.model / "model.safetensors"), "model"
    )
    assert "lies inside the" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("command", [erase, recommend, train])
def test_cuda_without_cuda_gives_the_right_hint(w, capsys, command):
    argv = [str(a) for a in command(w)]
    argv = [a if a != "cpu" else "cuda" for a in argv] if "--device" in argv else argv + ["--device", "cuda"]
    line = assert_refused(capsys, w.root, argv, "CUDA is not available on this machine")
    assert "re-train" not in line


def writable(folder: Path) -> bool:
    try:
        (folder / ".tracer-probe").mkdir()
    except OSError:
        return False
    (folder / ".tracer-probe").rmdir()
    return True


UNWRITABLE = Path("/sys/fs")  # sysfs takes no new entries, not even from root, like a read-only mount


@pytest.mark.skipif(not UNWRITABLE.is_dir() or writable(UNWRITABLE), reason="needs a folder nobody can write")
@pytest.mark.parametrize("command", [erase, recommend, evaluate, train])
def test_an_unwritable_out_is_refused_before_any_work(w, capsys, command):
    started = time.perf_counter()
    extra = ["--set", "steps=100000"] if command is erase else []
    assert_refused(capsys, w.root, command(w, *extra, out=UNWRITABLE / "tracer-out"), "cannot write")
    assert time.perf_counter() - started < 30  # refused up front, not after the work


def test_erasure_that_diverges_writes_nothing(w, capsys):
    """A finite lr so large that the loss overflows: stopped by the non-finite guard, nothing written."""
    assert_refused(capsys, w.root, erase(w, "--set", "lr=1e30", "--set", "steps=5"), "diverged")


def test_training_that_diverges_writes_nothing(w, capsys):
    preset = write(
        w.root / "p.yaml", (REPO / "configs" / "tiny.yaml").read_text().replace("lr: 0.01", "lr: 1e30")
    )
    assert_refused(capsys, w.root, train(w, preset=preset), "training diverged")


def test_a_second_writer_of_the_same_out_exits_2(w, capsys):
    """While one command holds the claim on --out, another is refused before any work."""
    with claim_folder(w.out, False, {}, lambda _: False) as stage:
        (stage / "first.txt").write_text("the first writer's output")
        assert_refused(capsys, w.root, erase(w), "another tracer command is writing")
    assert [p.name for p in w.out.iterdir()] == ["first.txt"]  # the first writer's, untouched


def test_a_second_training_run_into_the_same_out_exits_2(w, capsys):
    """Training writes its run folder in place (resumable), under the same claim as every writer."""
    with hold_claim(w.out):
        assert_refused(capsys, w.root, train(w), "another tracer command is writing")


def test_overwrite_replaces_an_erased_model_and_keeps_it_on_failure(w, capsys):
    assert main([str(a) for a in erase(w)]) == 0
    assert assert_refused(capsys, w.root, erase(w, "--overwrite", "--set", "lr=-1"), "lr must be > 0")
    assert main([str(a) for a in erase(w, "--overwrite", "--set", "steps=1")]) == 0
    assert json.loads((w.out / "manifest.json").read_text())["config"]["steps"] == 1
    assert sorted(p.name for p in w.root.iterdir()) == ["data", "model", "notes.txt", "out", "raw", "sids"]


def start_erase(w: W, steps: int) -> subprocess.Popen:
    argv = [sys.executable, "-m", "tracer.cli", *map(str, erase(w))]
    argv[argv.index("steps=2")] = f"steps={steps}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_a_replacement_killed_between_its_renames_is_undone(w, capsys):
    """A writer killed after moving the old folder aside (``.out.old``) and before moving the new one
    in: the next writer of that --out puts the old folder back before anything else."""
    assert main([str(a) for a in erase(w)]) == 0
    old = snapshot(w.out)
    os.replace(w.out, w.root / ".out.old")
    capsys.readouterr()
    assert main([str(a) for a in erase(w)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert snapshot(w.out) == old and not (w.root / ".out.old").exists()


def test_kill_9_during_erase_then_a_later_run_cleans_up(w, capsys):
    """While an erase runs in another process, a second writer of its --out is refused (exit 2, nothing
    changed); the first is then killed with -9, leaving its claim and staging folder; the next run on
    the same --out removes them and succeeds; the parent and data are untouched throughout."""
    before = snapshot(w.root)
    process = start_erase(w, steps=100_000)
    wait_for(w.root / ".out.partial", process)
    assert_refused(capsys, w.root, erase(w), "another tracer command is writing")
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert (w.root / ".out.partial").is_dir() and not w.out.exists()
    assert main([str(a) for a in erase(w)]) == 0
    left = {name: digest for name, digest in snapshot(w.root).items() if not name.startswith("out")}
    assert left == before  # the stale .out.partial and .out.lock are gone, everything else unchanged


def test_two_concurrent_writers_exactly_one_succeeds(w, capsys):
    """Two erase commands started at the same moment on the same --out (no --overwrite): one exits 0,
    the other 2 with one error line, whichever wins; a process-level version is the kill -9 test."""
    before = snapshot(w.root)
    start = threading.Barrier(2)
    codes = []

    def run() -> None:
        start.wait()
        codes.append(main([str(a) for a in erase(w)]))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    err = capsys.readouterr().err
    assert sorted(codes) == [0, 2], err
    errors = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert "another tracer command is writing" in errors[0] or "already exists" in errors[0]
    left = {name: digest for name, digest in snapshot(w.root).items() if not name.startswith("out")}
    assert left == before and (w.out / "manifest.json").is_file()
