"""benchmarks/extension_ladder.py: the paper's TRACER and one extension more per row, through the
frontier's resumable variant machinery (benchmarks/erasure_frontier.py)."""

from __future__ import annotations

import json

import pytest
from benchmarks import erasure_frontier
from benchmarks.extension_ladder import ladder

from tracer.pipelines.bench_config import load_bench_config
from tracer.resources import config_file
from tracer.unlearning.runner import method_defaults


def test_each_row_adds_one_extension_to_the_paper_and_the_last_is_the_ml1m_selection():
    rows = ladder({"seed": 3})
    names = [name for name, _, _ in rows]
    assert names == ["tracer-paper", "+retain_kl", "+kl_without_concept", "+kl_branch_shares",
                     "+coherence_anchor", "ml-1m-selection"]  # fmt: skip
    paper = method_defaults("tracer-paper")
    for (_, _, before), (name, method, after) in zip(rows[:4], rows[1:5]):
        assert method == "tracer-paper"
        effective = {**paper, **after}
        assert [k for k in effective if effective[k] != {**paper, **before}[k]] == [name[1:]]
    assert rows[1][2]["retain_kl"] == method_defaults("tracer-anchored")["retain_kl"] > 0
    ml1m = load_bench_config(config_file("bench-ml1m.yaml")).method_settings["tracer-anchored"]
    assert rows[-1][1:] == ("tracer-anchored", {**ml1m, "seed": 3})
    assert all(overrides["seed"] == 3 for _, _, overrides in rows)


def test_variants_resume_and_refuse_changed_settings(tmp_path, monkeypatch):
    erased, measured = [], []

    def fake_erase(request):
        erased.append(request.out.name)
        request.out.mkdir(parents=True)

    def fake_measure(model_dir, data, concept, parent, evaluation, cache):
        if cache.is_file():
            return json.loads(cache.read_text())
        measured.append((model_dir.name, evaluation.split))
        row = {"retain_ndcg@10": 0.04, "exposure@10": 0.0}
        cache.write_text(json.dumps(row))
        return row

    monkeypatch.setattr(erasure_frontier, "erase", fake_erase)
    monkeypatch.setattr(erasure_frontier, "measure", fake_measure)
    args = (tmp_path / "parent", tmp_path / "retrain", tmp_path / "data", "Horror", "test", tmp_path / "out")
    rows = erasure_frontier.run_variants(*args, ladder({}))
    assert list(rows) == ["retrain", *(name for name, _, _ in ladder({}))]
    assert len(erased) == 6 and len(measured) == 7 and {split for _, split in measured} == {"test"}
    assert rows["+retain_kl"]["settings"] == {"method": "tracer-paper", "retain_kl": 10.0}
    erasure_frontier.run_variants(*args, ladder({}))  # resumed: nothing erased or measured again
    assert len(erased) == 6 and len(measured) == 7
    with pytest.raises(SystemExit, match=r"tracer-paper.json was measured with other settings"):
        erasure_frontier.run_variants(*args, ladder({"steps": 2}))
