"""A 2-process torchrun run (gloo, CPU) trains, its ranks end with identical weights and metrics, and the
metrics gathered across ranks equal a single-process evaluation of the saved model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import warnings

import pytest

from tests.helpers.tiny_run_inputs import write_tiny_inputs
from tracer.evaluation.evaluate import evaluate_model
from tracer.io import read_json

RANK_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from tracer.training.config import load_preset
    from tracer.training.loop import train

    data, sids, out = sys.argv[1:4]
    config = load_preset("tiny").replace(max_epochs=2, patience=5, batch_size=16)
    summary = train(config, data, sids, out, show_progress=False)
    with open(f"{out}-rank{os.environ['RANK']}.json", "w") as handle:
        json.dump(summary, handle)
    """
)


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    data, sids = write_tiny_inputs(folder)
    script = folder / "rank.py"
    script.write_text(RANK_SCRIPT)
    out = folder / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
               str(script), str(data), str(sids), str(out)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    failures = []
    for _ in range(2):  # one retry: gloo has aborted a rank under CI load (seen twice)
        done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
        if done.returncode == 0:
            break
        written = sorted(path.name for path in folder.glob("run-rank*.json"))
        failures.append(f"rank summaries: {written}\n{done.stderr[:1500]}\n...\n{done.stderr[-3000:]}")
        shutil.rmtree(out, ignore_errors=True)
        for path in folder.glob("run-rank*.json"):
            path.unlink()
    assert done.returncode == 0, "\n\n".join(failures)
    if failures:
        warnings.warn(f"torchrun failed once and passed on retry: {failures[0][-1500:]}", stacklevel=1)
    ranks = [json.loads((folder / f"run-rank{rank}.json").read_text()) for rank in (0, 1)]
    return data, out, ranks


def test_ranks_hold_identical_weights_and_metrics(ddp_run):
    _, _, (rank0, rank1) = ddp_run
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert rank0["epochs"] == rank1["epochs"] == 2
    assert rank0["final_weights_sha256"] == rank1["final_weights_sha256"]
    assert rank0["valid"] == rank1["valid"] and rank0["test"] == rank1["test"]


def test_gathered_metrics_equal_single_process_evaluation(ddp_run):
    data, out, (rank0, _) = ddp_run
    log = read_json(out / "train_log.json")
    assert log[-1]["loss"] < log[0]["loss"]
    best = log[rank0["best_epoch"] - 1]
    single = evaluate_model(out, data, split="valid", k_max=10, beam_width=10, device="cpu")
    assert best["valid_ndcg@10"] == pytest.approx(single["all"]["ndcg@10"], abs=1e-12)
    assert best["valid_recall@10"] == pytest.approx(single["all"]["recall@10"], abs=1e-12)
    test = evaluate_model(out, data, split="test", device="cpu")
    assert test["all"] == pytest.approx(rank0["test"]["all"], abs=1e-12)
    assert read_json(out / "metrics.json")["test"] == rank0["test"]
