"""benchmarks/probe_floor.py: the probe beside its untrained floor, per cell, from attack result files."""

import json

import pytest
from benchmarks import probe_floor


def _write(path, auc, untrained):
    path.write_text(json.dumps({"probe": {"auc": auc, "untrained_auc": untrained}}))
    return path


def test_a_cell_averages_its_files_and_judges_the_parent_against_retrains_bar(tmp_path):
    parents = [_write(tmp_path / "p0.json", 0.70, 0.60), _write(tmp_path / "p1.json", 0.74, 0.60)]
    retrains = [_write(tmp_path / "r0.json", 0.68, 0.60), _write(tmp_path / "r1.json", 0.72, 0.62)]
    row = probe_floor.cell_row("C", parents, retrains)
    assert row["parent"] == pytest.approx(0.72) and row["retrain"] == pytest.approx(0.70)
    assert row["untrained"] == pytest.approx(0.605)  # (0.60 + 0.60 + 0.60 + 0.62) / 4
    assert row["bar"] == pytest.approx(0.72) and row["parent_meets_bar"]  # 0.72 <= 0.70 + 0.02
    assert row["parents"] == [0.70, 0.74] and row["retrains"] == [0.68, 0.72]
    above = probe_floor.cell_row("C", [_write(tmp_path / "p2.json", 0.73, 0.6)], retrains)
    assert not above["parent_meets_bar"]


def test_the_table_lists_every_cell_with_its_files(tmp_path, capsys):
    files = {name: _write(tmp_path / f"{name}.json", auc, 0.5) for name, auc in [("p", 0.66), ("r", 0.61)]}
    out = tmp_path / "table.md"
    argv = ["--cell", "ML-100k Horror", "--parents", str(files["p"]), "--retrains", str(files["r"])]
    probe_floor.main([*argv, "--out", str(out)])
    line = "| ML-100k Horror | 0.500 | 0.610 (0.610) | 0.660 (0.660) | 0.630 | no |"
    assert line in capsys.readouterr().out and line in out.read_text()


def test_every_cell_needs_its_parents_and_retrains(tmp_path):
    file = _write(tmp_path / "a.json", 0.6, 0.5)
    with pytest.raises(SystemExit):
        probe_floor.main(["--cell", "A", "--parents", str(file), "--retrains", str(file), "--cell", "B"])
