"""Every stage on a growing synthetic world: wall time and peak memory at 10k, 100k and 1M items.

For each size ``I`` the world has ``I / 10`` users, ``20 I`` interactions and 12 concepts
(``tracer prepare --dataset synthetic``); the stages run as ``tracer`` subprocesses, one at a time:

    prepare   the synthetic world
    sids      collaborative SIDs (``--encoder cf``; a text encoder on a million titles is hours on a CPU)
    train     one epoch of ``configs/synthetic-scale.yaml`` (causal tiny, histories of 20), then the
              final valid + test ranking of every user
    tracer    ``tracer erase --method tracer-anchored`` of ``Horror`` (its 60 steps; the default of
              ``tracer`` when the recorded cells ran)
    retrain   ``tracer erase --method retrain``: one epoch from scratch on the retain targets + ranking
    evaluate  ``tracer evaluate`` of the TRACER model with concept metrics
    attack    the relearning attack on the TRACER model (64 forget examples, 50 steps)

Peak memory is the child's own ``ru_maxrss`` (``os.wait4``); each stage runs under ``--limit`` seconds
and is killed after it, so one stage cannot eat the session. Results are kept per device and size in
``benchmarks/results/scaling.json``: a finished cell (done or timed out) is skipped on the next call,
so the benchmark resumes. It also writes the table into the write-up ``docs/benchmarks/scaling.md``
(between its markers, the text around it kept; ``--write-up``) and ``scaling.png`` next to the JSON
(TRACER's cost against one Retrain epoch as the data grows). Data and models go to
``runs/scaling/<items>/``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/scaling.py --items 10000 100000 [--limit 1800]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tracer.io import read_json, write_json

RESULTS = Path(__file__).resolve().parent / "results"
WRITE_UP = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "scaling.md"
STAGES = ("prepare", "sids", "train", "tracer", "retrain", "evaluate", "attack")
NEEDS = {"sids": "prepare", "train": "sids", "tracer": "train", "retrain": "train"}
NEEDS |= {"evaluate": "tracer", "attack": "tracer"}
FINISHED = ("done", "timeout")
TABLE_START, TABLE_END = "<!-- scaling table -->", "<!-- end of the scaling table -->"
CONCEPT = "Horror"
RELEARNING = ["--attacks", "relearning", "--examples", "64", "--steps", "50"]  # the single-point attack


def stage_commands(root: Path, items: int, device: str) -> dict[str, list[str]]:
    """The ``tracer`` arguments of every stage for a world of ``items`` items under ``root``."""
    data, sids, run = str(root / "data"), str(root / "sids"), str(root / "run")
    world = ["--users", items // 10, "--items", items, "--interactions", 20 * items, "--concepts", 12]
    erase = ["erase", run, "--data", data, "--concept", CONCEPT, "--device", device, "--overwrite"]
    on_tracer = [str(root / "tracer"), "--data", data, "--concept", CONCEPT, "--device", device]
    commands = {
        "prepare": ["prepare", "--dataset", "synthetic", *world, "--seed", 0, "--out", data, "--overwrite"],
        "sids": ["sids", data, "--encoder", "cf", "--out", sids, "--overwrite"],
        "train": ["train", data, sids, "--preset", "synthetic-scale", "--device", device, "--out", run],
        "tracer": [*erase, "--method", "tracer-anchored", "--out", str(root / "tracer")],
        "retrain": [*erase, "--method", "retrain", "--out", str(root / "retrain")],
        "evaluate": ["evaluate", *on_tracer, "--out", str(root / "evaluate.json")],
        "attack": ["attack", *on_tracer, *RELEARNING, "--out", str(root / "attack.json")],
    }
    commands["train"].append("--overwrite")
    return {stage: [str(part) for part in args] for stage, args in commands.items()}


def measure(args: list[str], limit: float, log: Path) -> dict:
    """Run ``python -m tracer.cli ARGS`` with one thread; wall seconds, peak RSS (MiB), status."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    started = time.perf_counter()
    with open(log, "w") as handle:
        process = subprocess.Popen([sys.executable, "-m", "tracer.cli", *args], stdout=handle,
                                   stderr=subprocess.STDOUT, env=env, start_new_session=True)  # fmt: skip
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            os.killpg(process.pid, signal.SIGKILL)

        timer = threading.Timer(limit, kill)
        timer.start()
        _, status, usage = os.wait4(process.pid, 0)
        timer.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    outcome = "timeout" if killed.is_set() else ("done" if process.returncode == 0 else "failed")
    tail = log.read_text(errors="replace").strip().splitlines()[-1:] if outcome == "failed" else []
    return {"status": outcome, "seconds": round(seconds, 1), "peak_mib": round(usage.ru_maxrss / 1024),
            "limit_s": limit, **({"error": tail[0][:300]} if tail else {})}  # fmt: skip


def run_size(results: dict, items: int, device: str, limit: float, root: Path, save) -> None:
    cells = results.setdefault(device, {}).setdefault(str(items), {})
    world = root / str(items)
    world.mkdir(parents=True, exist_ok=True)
    for stage, args in stage_commands(world, items, device).items():
        if cells.get(stage, {}).get("status") in FINISHED:
            continue
        needed = NEEDS.get(stage)
        if needed and cells.get(needed, {}).get("status") != "done":
            cells[stage] = {"status": f"skipped ({needed} not done)"}
            continue
        print(f"{device} {items:>9,} items  {stage:<9}", end=" ", flush=True)
        cells[stage] = measure(args, limit, world / f"{stage}.log")
        print(cells[stage], flush=True)
        save()


def table(results: dict) -> str:
    lines = []
    for device, sizes in results.items():
        lines += [f"| {device}: items | " + " | ".join(STAGES) + " |", "|---" * (len(STAGES) + 1) + "|"]
        for items, cells in sorted(sizes.items(), key=lambda pair: int(pair[0])):
            lines.append(f"| {int(items):,} | " + " | ".join(_cell(cells.get(s, {})) for s in STAGES) + " |")
        lines.append("")
    return "\n".join(lines)


def write_table(path: Path, text: str) -> None:
    """Put the table between the TABLE markers of the write-up ``path`` (the whole file if it has none)."""
    prose = path.read_text() if path.is_file() else ""
    if TABLE_START in prose and TABLE_END in prose:
        head, rest = prose.split(TABLE_START, 1)
        text = head + TABLE_START + "\n" + text + rest[rest.index(TABLE_END) :]
    else:
        text = f"{TABLE_START}\n{text}{TABLE_END}\n"
    path.write_text(text)


def _cell(cell: dict) -> str:
    if cell.get("status") == "done":
        return f"{cell['seconds']:,.0f} s, {cell['peak_mib'] / 1024:.1f} GiB"
    if cell.get("status") == "timeout":
        return f"> {cell['limit_s']:,.0f} s (limit), {cell['peak_mib'] / 1024:.1f} GiB"
    return cell.get("status", "not run")


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for device, sizes in results.items():
        for stage, marker in (("tracer", "o"), ("retrain", "s")):
            points = sorted((int(n), c[stage]["seconds"]) for n, c in sizes.items()
                            if c.get(stage, {}).get("status") == "done")  # fmt: skip
            if points:
                axis.plot(*zip(*points), marker=marker, label=f"{stage} ({device})")
    axis.set(xscale="log", yscale="log", xlabel="items (interactions = 20 x items)", ylabel="wall seconds",
             title="TRACER (60 steps) against one Retrain epoch")  # fmt: skip
    axis.legend()
    axis.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (a column of its own)")
    parser.add_argument("--limit", type=float, default=1800, help="seconds per stage before it is killed")
    parser.add_argument("--root", type=Path, default=Path("runs/scaling"))
    parser.add_argument("--results", type=Path, default=RESULTS / "scaling.json")
    parser.add_argument("--write-up", type=Path, default=WRITE_UP, help="the page that shows the table")
    parser.add_argument("--clean", action="store_true", help="delete each size's runs folder when done")
    options = parser.parse_args()
    results = read_json(options.results) if options.results.is_file() else {}

    def save() -> None:  # merge: a second call on other sizes may be writing the same file
        merged = read_json(options.results) if options.results.is_file() else {}
        for items in options.items:
            cells = results.get(options.device, {}).get(str(items))
            if cells is not None:
                merged.setdefault(options.device, {})[str(items)] = cells
        results.clear()
        results.update(merged)
        write_json(options.results, results)
        write_table(options.write_up, table(results))
        plot(results, options.results.with_suffix(".png"))

    for items in options.items:
        run_size(results, items, options.device, options.limit, options.root, save)
        if options.clean:
            shutil.rmtree(options.root / str(items), ignore_errors=True)
    save()
    print(table(results))


if __name__ == "__main__":
    main()
