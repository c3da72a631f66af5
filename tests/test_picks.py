"""`tracer picks` (docs/method.md §5.1): one setting per method over the tuning concepts' sweeps by the
one selection rule, the best baseline by the same rule, written into a bench config that then applies
them unchanged, and shown by the report."""

from __future__ import annotations

import pytest

from tests.helpers.report_results import synthetic_results, write_results
from tracer.cli import main
from tracer.errors import UserError
from tracer.io import read_json, write_json
from tracer.pipelines.bench_config import load_bench_config, write_picks
from tracer.reporting.html import write_report
from tracer.unlearning.picks import load_sweeps, pooled_rows, select_picks

RETRAIN = {"Horror": (0.040, 0.0010), "Children's": (0.050, 0.0)}  # retain NDCG@10, Exposure@10


def summary(method: str, concept: str, trials: dict[str, tuple[float, float]]) -> dict:
    """A sweep.json of ``method`` on ``concept``: cell -> (retain NDCG@10, Exposure@10); cell "lr=N"."""
    retain, exposure = RETRAIN[concept]
    rows = [{"cell": "default", "trial": False, "settings": {}, "retain_ndcg@10": 1.0, "exposure@10": 0.0,
             "seconds": 1.0}]  # fmt: skip
    rows += [
        {
            "cell": cell,
            "trial": True,
            "settings": {"lr": float(cell[3:])},
            "retain_ndcg@10": r,
            "exposure@10": e,
            "seconds": 2.0,
        }  # fmt: skip
        for cell, (r, e) in trials.items()
    ]
    return {"method": method, "concept": concept, "selected_on": "valid", "grid": {"lr": [1, 2, 3]},
            "trials": len(trials), "retrain": {"retain_ndcg@10": retain, "exposure@10": exposure},
            "rows": rows}  # fmt: skip


# lr=1 keeps the most retain NDCG@10 on Horror but leaves Children's 0.0008 above Retrain: not a pick.
SWEEPS = {
    "Horror": {
        "npo": {"lr=1": (0.040, 0.0010), "lr=2": (0.036, 0.0012), "lr=3": (0.030, 0.0)},
        "ga": {"lr=1": (0.040, 0.0100), "lr=2": (0.039, 0.0090), "lr=3": (0.038, 0.0200)},
        "tracer": {"lr=1": (0.044, 0.0), "lr=2": (0.039, 0.0), "lr=3": (0.020, 0.0)},
    },
    "Children's": {
        "npo": {"lr=1": (0.050, 0.0008), "lr=2": (0.045, 0.0005), "lr=3": (0.049, 0.0)},
        "ga": {"lr=1": (0.040, 0.0100), "lr=2": (0.050, 0.0080), "lr=3": (0.050, 0.0010)},
        "tracer": {"lr=1": (0.050, 0.0), "lr=2": (0.049, 0.0), "lr=3": (0.020, 0.0)},
    },
}


@pytest.fixture()
def sweep_roots(tmp_path):
    roots = []
    for concept, methods in SWEEPS.items():
        root = tmp_path / "tune" / concept.lower().replace("'", "")
        for method, trials in methods.items():
            write_json(root / method / "sweep.json", summary(method, concept, trials))
        roots.append(root)
    return roots


def test_pooled_rows_take_the_mean_share_of_retrain_and_the_worst_excess_exposure(sweep_roots):
    rows = {row["cell"]: row for row in pooled_rows(load_sweeps(sweep_roots)["npo"])}
    assert rows["lr=2"]["retain_ndcg@10"] == pytest.approx((0.036 / 0.040 + 0.045 / 0.050) / 2)
    assert rows["lr=2"]["exposure@10"] == pytest.approx(0.0005)  # Children's: 0.0005 - 0; Horror 0.0002
    assert rows["lr=1"]["exposure@10"] == pytest.approx(0.0008)
    assert set(rows["lr=1"]["per_concept"]) == {"Horror", "Children's"}


def test_a_pick_must_qualify_on_every_tuning_concept_and_the_best_baseline_follows_the_rule(sweep_roots):
    picks = select_picks(load_sweeps(sweep_roots))
    # npo: lr=1 fails on Children's; lr=2 keeps (0.9 + 0.9) / 2 of Retrain's, lr=3 (0.75 + 0.98) / 2
    assert picks["methods"]["npo"]["settings"] == {"lr": 2.0}
    # ga: none qualifies; the lowest worst excess is lr=2's 0.0080 (lr=3 is best on Children's alone)
    assert picks["methods"]["ga"]["settings"] == {"lr": 2.0}
    assert picks["methods"]["tracer"]["settings"] == {"lr": 1.0}
    assert picks["best_baseline"] == "npo"  # ga's pick qualifies nowhere; tracer is never a baseline
    assert picks["concepts"] == ["Horror", "Children's"]


def test_sweeps_of_different_trials_or_from_before_the_protocol_are_refused(sweep_roots):
    path = sweep_roots[1] / "npo" / "sweep.json"
    changed = read_json(path)
    changed["rows"].pop()
    write_json(path, changed)
    with pytest.raises(UserError, match="the sweeps of 'npo' ran different trials"):
        select_picks(load_sweeps(sweep_roots))
    del changed["retrain"]
    write_json(path, changed)
    with pytest.raises(UserError, match="predates the tuning protocol"):
        load_sweeps(sweep_roots)


TEMPLATE = """\
# a held-out grid
datasets:
  ml-100k: {}
concepts: {ml-100k: [Horror]}
methods: [tracer, ga, filter]  # the best baseline joins after tuning
method_settings: {}
seeds: [0]
picks: null
"""


def test_picks_rewrite_a_bench_config_that_then_refuses_other_settings(sweep_roots, tmp_path, capsys):
    config = tmp_path / "bench.yaml"
    config.write_text(TEMPLATE)
    picks_file = tmp_path / "picks.json"
    args = ["picks", *map(str, sweep_roots), "--out", str(picks_file), "--bench", str(config)]
    assert main(args) == 0
    assert "npo *" in capsys.readouterr().out
    loaded = load_bench_config(config)
    assert loaded.methods == ["tracer", "filter", "npo"]  # ga, a tuned baseline but not the best, leaves
    assert loaded.method_settings == {"tracer": {"lr": 1.0}, "npo": {"lr": 2.0}}
    assert loaded.picks == str(picks_file)
    text = config.read_text()
    assert text.startswith("# a held-out grid\n") and "# the best baseline joins after tuning" in text
    write_picks(config, picks_file, read_json(picks_file))  # idempotent
    assert config.read_text() == text
    config.write_text(text.replace("npo: {lr: 2.0}", "npo: {lr: 3.0}"))
    with pytest.raises(UserError, match="method_settings of npo are not the picks of"):
        load_bench_config(config)


def test_a_multi_line_key_is_refused(sweep_roots, tmp_path):
    config = tmp_path / "bench.yaml"
    config.write_text(TEMPLATE.replace("methods: [tracer, ga, filter]", "methods:\n  - tracer"))
    with pytest.raises(UserError, match="write 'methods:' on one line"):
        write_picks(config, tmp_path / "p.json", select_picks(load_sweeps(sweep_roots)))


def test_the_report_shows_the_search_spaces_and_picks(sweep_roots, tmp_path):
    folder = tmp_path / "results"
    write_results(folder, synthetic_results(second_pair=False))
    assert "Tuning: search spaces and picks" not in write_report(folder).read_text()
    write_json(folder / "picks.json", select_picks(load_sweeps(sweep_roots)))
    page = write_report(folder).read_text()
    assert "Tuning: search spaces and picks" in page and "<td>npo *</td>" in page
    assert "<td>lr=2.0</td>" in page and "<td>90.0%</td>" in page


def test_the_bench_keeps_the_picks_next_to_its_results(sweep_roots, tmp_path, monkeypatch):
    import tracer.pipelines.bench as bench

    config = tmp_path / "bench.yaml"
    config.write_text(TEMPLATE)
    picks = select_picks(load_sweeps(sweep_roots))
    write_json(tmp_path / "picks.json", picks)
    monkeypatch.setattr(bench.Bench, "run", lambda self: {})  # the grid itself is test_bench's
    bench.run_bench(write_picks(config, tmp_path / "picks.json", picks), tmp_path / "out")
    assert read_json(tmp_path / "out" / "picks.json") == picks
