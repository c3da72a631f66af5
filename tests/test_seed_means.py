"""benchmarks/seed_means.py: per-model means over seeds from run folders of both kinds."""

import json
import math
from pathlib import Path

import pytest
from benchmarks import seed_means


def _split(ndcg10: float) -> dict[str, float]:
    return {"recall@5": 2 * ndcg10, "ndcg@5": ndcg10 / 2, "recall@10": 3 * ndcg10, "ndcg@10": ndcg10}


def _write_run(folder: Path, valid: float, test: float, generative: bool) -> None:
    folder.mkdir(parents=True)
    splits = {"valid": _split(valid), "test": _split(test)}
    if generative:  # `tracer train` nests each split's metrics under "all"
        splits = {name: {"all": values} for name, values in splits.items()}
    (folder / "metrics.json").write_text(json.dumps({"best_epoch": 3, **splits}))


def test_means_spread_and_share_of_the_reference(tmp_path: Path) -> None:
    for seed, (valid, test) in enumerate([(0.05, 0.04), (0.07, 0.06)]):
        _write_run(tmp_path / f"gen-s{seed}", valid, test, generative=True)
    for seed, test in enumerate([0.05, 0.07, 0.09]):
        _write_run(tmp_path / f"sasrec-s{seed}", 0.1, test, generative=False)
    (tmp_path / "gen-s9").mkdir()  # an unfinished run without metrics.json is skipped

    generative = seed_means.summarise(seed_means.load_group(str(tmp_path / "gen-s*")))
    assert generative["runs"] == 2
    assert generative["ndcg@10"] == pytest.approx(0.05)
    assert generative["std"] == pytest.approx(math.sqrt(2) * 0.01)  # sample std of (0.04, 0.06)
    assert generative["per_run"] == pytest.approx([0.04, 0.06])
    assert generative["test_means"] == pytest.approx([0.10, 0.025, 0.15])
    assert generative["valid_ndcg@10"] == pytest.approx(0.06)

    groups = {
        "gen": seed_means.load_group(str(tmp_path / "gen-s*")),
        "SASRec": seed_means.load_group(str(tmp_path / "sasrec-s*")),
    }
    rows = seed_means.table(groups, reference="SASRec").splitlines()
    assert rows[2].startswith("| gen | 2 | 0.0500 (0.0141) |") and rows[2].endswith(" 71% |")  # 0.05 / 0.07
    assert rows[3].startswith("| SASRec | 3 | 0.0700 (0.0200) |") and rows[3].endswith(" 100% |")


def test_a_glob_without_runs_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no run folder with a metrics.json matches"):
        seed_means.load_group(str(tmp_path / "missing-*"))
