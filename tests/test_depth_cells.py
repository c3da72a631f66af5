"""benchmarks/depth_cells.py: issue 23's bars judged on the mean over a cell's seeds."""

import json

import pytest
from benchmarks import depth_cells


def _row(
    retain=0.04, attack=0.1, curve=(0.0, 0.1, 0.7, 0.8), restore=0.0, probe=0.7, exposure=0.0, seconds=10.0
):
    return {
        "retain_ndcg@10": retain,
        "attack_exposure@10": attack,
        "curve_64": list(curve),
        "restore_exposure@10": restore,
        "probe_auc": probe,
        "exposure@10": exposure,
        "seconds": seconds,
    }


RETRAIN = _row(seconds=200.0)


def test_every_bar_met_at_its_boundary():
    # attack 1.1 * 0.1 + 0.01 = 0.12; probe 0.72; retain 97%; exposure 0.0005; cost 10%
    row = _row(retain=0.0388, attack=0.12, restore=0.005, probe=0.72, exposure=0.0005, seconds=20.0)
    verdict = depth_cells.judge([(row, RETRAIN)])
    assert all(verdict["pass"].values()), verdict["pass"]
    assert verdict["retain_share"] == pytest.approx(97.0)


@pytest.mark.parametrize(
    "change, bar",
    [
        ({"attack": 0.121}, "attack"),
        ({"curve": (0.01, 0.11, 0.7, 0.8)}, "curve"),
        ({"restore": 0.0051}, "restore"),
        ({"probe": 0.721}, "probe"),
        ({"retain": 0.0387}, "retain"),
        ({"exposure": 0.0006}, "exposure"),
        ({"seconds": 20.1}, "cost"),
    ],
)
def test_each_bar_fails_just_past_its_bound(change, bar):
    verdict = depth_cells.judge([(_row(**change), RETRAIN)])
    assert [name for name, ok in verdict["pass"].items() if not ok] == [bar]


def test_curve_counts_three_of_four_and_means_over_seeds():
    # one point above Retrain's still passes; the means of two seeds are compared, not each seed
    above_once = _row(curve=(0.0, 0.1, 0.71, 0.8))
    once = depth_cells.judge([(above_once, RETRAIN)])
    assert once["curve_at_or_below"] == 3 and once["pass"]["curve"]
    high, low = _row(attack=0.2), _row(attack=0.0)
    verdict = depth_cells.judge([(high, RETRAIN), (low, RETRAIN)])
    assert verdict["attack"] == pytest.approx(0.1) and verdict["pass"]["attack"]
    assert verdict["seeds"] == 2


def test_unfinished_variants_are_skipped(tmp_path):
    (tmp_path / "retrain.json").write_text(json.dumps(RETRAIN))
    assert depth_cells.load_rows(tmp_path, "deep") is None
    (tmp_path / "deep.json").write_text(json.dumps(_row()))
    assert depth_cells.load_rows(tmp_path, "deep") == (_row(), RETRAIN)


def test_a_pooled_variant_judges_the_rows_of_every_named_variant(tmp_path):
    """``deep+deep-e1``: both erasures of each folder enter one mean; an unfinished name is skipped."""
    folders = [tmp_path / "s0", tmp_path / "s1"]
    for index, folder in enumerate(folders):
        folder.mkdir()
        (folder / "retrain.json").write_text(json.dumps(RETRAIN))
        (folder / "deep.json").write_text(json.dumps(_row(attack=0.1 * index)))
        (folder / "deep-e1.json").write_text(json.dumps(_row(attack=0.2 + 0.1 * index)))
    pairs = depth_cells.pooled_rows(folders, "deep+deep-e1+deep-e2")
    assert len(pairs) == 4
    verdict = depth_cells.judge(pairs)
    assert verdict["seeds"] == 4 and verdict["attack"] == pytest.approx((0.0 + 0.1 + 0.2 + 0.3) / 4)
    assert depth_cells.pooled_rows(folders, "deep") == [
        (_row(attack=0.0), RETRAIN),
        (_row(attack=0.1), RETRAIN),
    ]


def test_a_ladder_row_keeps_its_leading_plus(tmp_path):
    """The extension ladder's rows are named ``+retain_kl`` ...: a leading "+" is part of the name."""
    (tmp_path / "retrain.json").write_text(json.dumps(RETRAIN))
    (tmp_path / "+retain_kl.json").write_text(json.dumps(_row(attack=0.3)))
    (tmp_path / "deep.json").write_text(json.dumps(_row(attack=0.1)))
    assert depth_cells.pooled_rows([tmp_path], "+retain_kl") == [(_row(attack=0.3), RETRAIN)]
    assert len(depth_cells.pooled_rows([tmp_path], "+retain_kl+deep")) == 2


def test_the_probe_cell_names_the_untrained_floor_when_every_retrain_row_has_it():
    """Rows of frontier runs that kept the probe's untrained AUC show its mean over seeds; older rows
    (without it) leave the probe cell as it was."""
    with_floor = [({**_row(), "probe_untrained_auc": 0.5}, {**RETRAIN, "probe_untrained_auc": value})
                  for value in (0.60, 0.64)]  # fmt: skip
    verdict = depth_cells.judge(with_floor)
    assert verdict["probe_floor"] == pytest.approx(0.62)
    assert "| 0.700 vs 0.700 (untrained 0.620) |" in depth_cells.cell_line("C", "v", verdict)
    mixed = depth_cells.judge([with_floor[0], (_row(), RETRAIN)])
    assert mixed["probe_floor"] is None
    assert "| 0.700 vs 0.700 |" in depth_cells.cell_line("C", "v", mixed)
