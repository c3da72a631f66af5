"""benchmarks/erasure_cost.py: variants run in interleaved rounds; shares are of Retrain's median."""

from __future__ import annotations

import pytest
from benchmarks import erasure_cost

from tracer.io import read_json

pytestmark = pytest.mark.usefixtures("one_thread")


def test_cost_rows_are_medians_as_shares_of_the_reference_median():
    rows = erasure_cost.cost_rows({"retrain": [10.0, 40.0, 20.0], "fast": [1.0, 8.0, 3.0]}, "retrain")
    assert [row["median_seconds"] for row in rows] == [20.0, 3.0]  # medians, not means (23.3, 4.0)
    assert [row["percent_of_retrain"] for row in rows] == [100.0, 15.0]
    assert "| fast | 1.0, 8.0, 3.0 | 3.0 | 15.0% |" in erasure_cost.cost_table(rows)


def test_rounds_interleave_the_variants_and_reuse_finished_runs(world, tmp_path, monkeypatch):
    order = []
    real_erase = erasure_cost.erase

    def logged_erase(request):
        order.append(request.out.name)
        return real_erase(request)

    monkeypatch.setattr(erasure_cost, "erase", logged_erase)
    out = tmp_path / "cost"
    argv = ["--parent", str(world.model_dir), "--data", str(world.data_dir), "--concept", "Horror",
            "--rounds", "2", "--out", str(out), "--variant", "retrain=retrain:",
            "--variant", "ga=ga:steps=2"]  # fmt: skip
    erasure_cost.main(argv)
    assert order == ["retrain-r0", "ga-r0", "retrain-r1", "ga-r1"]
    rows = {row["variant"]: row for row in read_json(out / "cost.json")["rows"]}
    for name in ("retrain", "ga"):
        manifests = [read_json(out / "runs" / f"{name}-r{k}" / "manifest.json") for k in (0, 1)]
        assert rows[name]["seconds"] == [m["seconds"] for m in manifests]
    assert rows["ga"]["percent_of_retrain"] == pytest.approx(
        100 * rows["ga"]["median_seconds"] / rows["retrain"]["median_seconds"]
    )
    order.clear()
    erasure_cost.main(argv)  # every run is finished: nothing is erased again
    assert order == []


@pytest.mark.parametrize(
    "variants",
    [
        ["ga=ga:"],
        ["a=retrain:", "b=retrain:"],
        ["retrain=retrain:", "retrain=ga:"],
        ["retrain=retrain:", "ga"],  # no NAME=METHOD
    ],
)
def test_a_missing_or_doubled_reference_or_name_or_a_malformed_variant_exits_2(world, tmp_path, variants):
    argv = ["--parent", str(world.model_dir), "--data", str(world.data_dir), "--concept", "Horror",
            "--out", str(tmp_path / "cost")]  # fmt: skip
    for variant in variants:
        argv += ["--variant", variant]
    with pytest.raises(SystemExit) as stop:
        erasure_cost.main(argv)
    assert stop.value.code == 2 and not (tmp_path / "cost").exists()
