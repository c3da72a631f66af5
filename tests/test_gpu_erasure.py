"""`benchmarks/gpu_erasure.sh` on the CPU (DEVICE=cpu SIZE=tiny): every stage finishes, at most 6 files
land in $OUT, and the summary holds each method's cost and metrics; a partial run's summary says what
is missing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from benchmarks.gpu_erasure_summary import summarize

ROOT = Path(__file__).resolve().parents[1]

STAGES = ["parent", "retrain", "tracer", "npo"]
STAGES += [f"{kind}-{method}" for kind in ("eval", "attack") for method in ("tracer", "npo", "retrain")]


def _run(tmp_path: Path, **env) -> subprocess.CompletedProcess:
    variables = {**os.environ, "OUT": str(tmp_path / "out"), "WORK": str(tmp_path / "work"),
                 "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", **env}  # fmt: skip
    command = ["bash", "benchmarks/gpu_erasure.sh"]
    return subprocess.run(command, cwd=ROOT, env=variables, capture_output=True, text=True, timeout=1200)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_cpu_dry_run_finishes_every_stage(tmp_path):
    # SLACK and BUDGET: a loaded test machine must not turn into a failure (speed lives in the benchmark)
    done = _run(tmp_path, DEVICE="cpu", SIZE="tiny", SLACK="5", BUDGET="1000")
    assert done.returncode == 0, done.stderr[-2000:]
    files = [path for path in (tmp_path / "out").rglob("*") if path.is_file()]
    assert sorted(path.name for path in files) == ["gpu_erasure.log", "summary.json"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert list(summary["stages"]) == STAGES
    assert {stage["status"] for stage in summary["stages"].values()} == {"done"}
    assert summary["parent"]["epochs"] >= 1 and summary["parent"]["test"]["ndcg@10"] > 0
    for method, result in summary["methods"].items():
        assert result["seconds"] > 0 and result["headline"]["exposure@10"] >= 0, method
        before, after = result["attack"][0], result["attack"][-1]
        assert (before["steps"], after["steps"]) == (0, 10) and 0 <= after["exposure@10"] <= 1, method
    assert 0 < summary["methods"]["tracer"]["seconds_vs_retrain"] < 1
    assert summary["methods"]["tracer"]["steps"] == 20


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bad_size_is_one_line_and_exit_2(tmp_path):
    done = _run(tmp_path, DEVICE="cpu", SIZE="huge")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "SIZE must be" in done.stderr


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_a_run_out_of_budget_still_writes_its_summary_and_exits_1(tmp_path):
    done = _run(tmp_path, DEVICE="cpu", SIZE="ml-1m", BUDGET="0")
    assert done.returncode == 1
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert list(summary["stages"]) == STAGES
    assert {stage["status"] for stage in summary["stages"].values()} == {"skipped"}
    assert summary["parent"] is None and summary["methods"]["tracer"]["seconds"] is None


def test_partial_run_summary_names_what_is_missing(tmp_path):
    (tmp_path / "parent").mkdir()
    (tmp_path / "parent" / "train_log.json").write_text('[{"targets": 100, "train_seconds": 2.0}]')
    stages = tmp_path / "stages.tsv"
    stages.write_text("parent\t124\t150\t150\nretrain\tskipped\t0\t3\n")
    summary = summarize(tmp_path, stages)
    assert summary["stages"]["parent"]["status"] == "timeout"
    assert summary["stages"]["retrain"]["status"] == "skipped"
    assert summary["parent"] == {"epochs": 1, "targets_per_second": 50.0, "test": None}
    assert summary["methods"]["tracer"]["seconds"] is None
    assert summary["methods"]["tracer"]["seconds_vs_retrain"] is None
