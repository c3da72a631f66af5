"""`tracer report`: a synthetic results folder -> one self-contained report.html whose images decode, whose
best cells are the ones built to be best, whose concept items are marked and whose text is escaped;
schema mistakes are UserErrors; aggregation equals numpy."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from tests.helpers.report_results import (
    synthetic_results,
    write_results,
)
from tracer.cli import main
from tracer.errors import UserError
from tracer.reporting.html import write_report
from tracer.reporting.plots import entanglement_plot
from tracer.reporting.results import METRICS, Entanglement, aggregate, load_results

# Base value per method; Retrain and Original are better than every erasure method on some columns, so a
# best mark on them would show the references were not kept out of the ranking.
EXPECTED_BEST = {
    "retain_ndcg@10": {"ga"},
    "exposure@10": {"tracer"},
    "concept_mass": {"tracer"},
    "median_concept_rank": {"tracer"},
    "seconds": {"ga"},
    "gap_exposure@10": {"tracer", "ga"},  # a tie: both win
}


class Cells(HTMLParser):
    """Collects the metric table cells and the example list items of a report."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[dict] = []  # {"table", "method", "metric", "class", "text"}
        self.items: list[dict] = []  # {"class", "text"} of the example lists' items
        self.tables = 0
        self._method = None
        self._open: dict | None = None
        self._in_items = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables += 1
        elif tag == "tr" and "data-method" in attrs:
            self._method = attrs["data-method"]
        elif tag == "td" and "data-metric" in attrs:
            self._open = {"table": self.tables, "method": self._method, "metric": attrs["data-metric"],
                          "class": attrs.get("class") or "", "text": ""}  # fmt: skip
            self.cells.append(self._open)
        elif tag == "ol":
            self._in_items = attrs.get("class") == "items"
        elif tag == "li" and self._in_items:
            self._open = {"class": attrs.get("class") or "", "text": ""}
            self.items.append(self._open)

    def handle_endtag(self, tag):
        if tag in ("td", "li"):
            self._open = None

    def handle_data(self, data):
        if self._open is not None:
            self._open["text"] += data


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, str]:
    folder = write_results(tmp_path_factory.mktemp("results"), synthetic_results())
    path = write_report(folder)
    return folder, path.read_text(encoding="utf-8")


def test_every_plot_is_embedded_as_a_decodable_png(report):
    folder, page = report
    written = sorted((folder / "plots").glob("*.png"))
    assert len(written) == 3  # two trade-off plots + one entanglement plot (only ml-100k|Horror has one)
    payloads = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(payloads) == len(written) == page.count("<img ")
    decoded = [base64.b64decode(payload, validate=True) for payload in payloads]
    assert sorted(decoded) == sorted(path.read_bytes() for path in written)
    for png in decoded:
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        pixels = matplotlib.image.imread(io.BytesIO(png), format="png")
        assert pixels.shape[0] > 300 and pixels.shape[1] > 500 and pixels.std() > 0.05


def test_report_requests_nothing_from_outside(report):
    _, page = report
    for reference in re.findall(r'\b(?:src|href)="([^"]*)"', page):
        assert reference.startswith(("data:image/png;base64,", "#")), reference
    assert "url(" not in page and "@import" not in page and "<script" not in page
    assert "default-src 'none'" in page


def test_best_value_per_column_is_marked(report):
    _, page = report
    parser = Cells()
    parser.feed(page)
    assert parser.tables == 2
    for table in (1, 2):
        cells = [cell for cell in parser.cells if cell["table"] == table]
        for metric, expected in EXPECTED_BEST.items():
            marked = {
                cell["method"] for cell in cells if cell["metric"] == metric and "best" in cell["class"]
            }
            assert marked == expected, metric
        best_cells = re.findall(r'<td class="best" data-metric="[^"]+"><strong>.*?</strong></td>', page)
        assert len(best_cells) == sum(1 for cell in parser.cells if "best" in cell["class"])
    exposure = {
        c["method"]: c["text"] for c in parser.cells if c["table"] == 1 and c["metric"] == "exposure@10"
    }
    assert exposure == {"original": "0.2000 ± 0.0010", "retrain": "0.0020 ± 0.0010",
                        "tracer": "0.0200 ± 0.0010", "ga": "0.0600 ± 0.0010"}  # fmt: skip
    seconds = {c["method"]: c["text"] for c in parser.cells if c["table"] == 1 and c["metric"] == "seconds"}
    assert seconds["original"] == "—" and seconds["tracer"] == "30.0 ± 0.0"
    assert 'data-metric="attack_exposure@10"' not in page  # a metric no row measured gets no column


def test_reference_rows_are_set_apart(report):
    _, page = report
    references = re.findall(r'<tbody class="references">(.*?)</tbody>', page)
    assert len(references) == 2
    for body in references:
        assert re.findall(r'data-method="([^"]+)"', body) == ["original", "retrain"]
        assert body.count('class="original reference"') == 1 and body.count('class="retrain reference"') == 1


def test_concept_items_are_marked_in_examples(report):
    _, page = report
    parser = Cells()
    parser.feed(page)
    expected = []
    for example in synthetic_results()["examples"]:
        expected += [(i["title"], i["is_concept"]) for i in example["history"]]
        for method in ("original", "retrain", "tracer"):  # the report's method order
            expected += [(i["title"], i["is_concept"]) for i in example["recommendations"][method]]
    rendered = [(li["text"].removeprefix("◆"), "concept" in li["class"].split()) for li in parser.items]
    assert rendered == expected
    assert all(li["text"].startswith("◆") == ("concept" in li["class"]) for li in parser.items)
    assert page.count("4/10 concept") == 6  # ranks 0, 3, 6, 9 of each list are concept items


def test_text_is_escaped(report):
    _, page = report
    assert "<script>" not in page and "<box>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in page
    assert "test &lt;box&gt;" in page


def test_cli_writes_report_and_prints_headline_table(tmp_path, capsys):
    folder = write_results(tmp_path / "results", synthetic_results(second_pair=False))
    out = tmp_path / "elsewhere" / "my-report.html"
    assert main(["report", str(folder), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert out.is_file() and str(out) in printed and not (folder / "report.html").exists()
    header, rule, *lines = printed.strip().splitlines()[:-1]
    assert header.split() == [
        "dataset",
        "concept",
        "method",
        "retain_ndcg@10",
        "exposure@10",
        "concept_mass",
        "seconds",
    ]
    assert [line.split()[2] for line in lines] == ["original", "retrain", "tracer", "ga"]
    assert lines[2].split()[3:] == ["0.0700±0.0010", "0.0200±0.0010", "0.0500±0.0010", "30.0±0.0"]
    assert lines[0].split()[-1] == "-"  # Original has no time


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (lambda r: r.pop("rows"), "'rows'"),
        (lambda r: r.pop("meta"), "'meta'"),
        (lambda r: r["rows"][3].pop("method"), "'method'"),
        (lambda r: r["rows"][0].pop("exposure@10"), "'exposure@10'"),
        (lambda r: r["rows"][0].update(concept_mass="high"), "concept_mass"),
        (lambda r: r["entanglement"]["ml-100k|Horror"].pop("after"), "'after'"),
        (lambda r: r["examples"][1]["history"][0].pop("is_concept"), "'is_concept'"),
        (lambda r: r["examples"][0].update(concept="horror"), "ml-100k|horror"),
        (lambda r: r["rows"].append(dict(r["rows"][0])), "two rows"),
    ],
)
def test_schema_mistakes_are_user_errors(tmp_path, capsys, damage, named):
    results = synthetic_results(second_pair=False)
    damage(results)
    folder = write_results(tmp_path / "results", results)
    with pytest.raises(UserError, match=re.escape(named)):
        load_results(folder)
    assert main(["report", str(folder)]) == 2
    assert named in capsys.readouterr().err
    assert not (folder / "report.html").exists()


def test_missing_or_broken_results_json(tmp_path):
    with pytest.raises(UserError, match="no results.json"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        load_results(tmp_path)


def test_aggregate_equals_numpy(tmp_path):
    rng = np.random.default_rng(0)
    results = synthetic_results()
    for row in results["rows"]:
        row.update({metric: float(rng.normal()) for metric in METRICS})
    results["rows"][5]["concept_mass"] = None  # a null is skipped, not counted as 0
    rows = load_results(write_results(tmp_path, results)).rows
    summary = aggregate(rows)
    assert len(summary) == 8 and (summary["n_seeds"] == 3).all()
    for _, group in summary.iterrows():
        chosen = [r for r in results["rows"] if (r["dataset"], r["concept"], r["method"]) ==
                  (group["dataset"], group["concept"], group["method"])]  # fmt: skip
        for metric in METRICS:
            values = np.array([np.nan if r[metric] is None else r[metric] for r in chosen], dtype=float)
            values = values[np.isfinite(values)]
            assert group[f"{metric}_mean"] == pytest.approx(np.mean(values), rel=1e-12)
            assert group[f"{metric}_std"] == pytest.approx(np.std(values, ddof=1), rel=1e-12)


def test_plots_are_deterministic(tmp_path):
    measured = Entanglement(before=[0.6, 0.1, 0.0], after=[0.2, 0.05, 0.0])
    first = entanglement_plot(measured, "Entanglement", tmp_path / "a.png").read_bytes()
    second = entanglement_plot(measured, "Entanglement", tmp_path / "b.png").read_bytes()
    assert first == second
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left behind


def test_optional_parts_missing_and_unplottable_rows_still_render(tmp_path):
    results = synthetic_results(second_pair=False)
    del results["entanglement"], results["examples"]
    for row in results["rows"]:
        row.update({"exposure@10": None, "concept": "Cost $5 & <up>"})
    page = write_report(write_results(tmp_path, results)).read_text(encoding="utf-8")
    assert page.count("<img ") == 1 and len(list((tmp_path / "plots").glob("*.png"))) == 1
    assert "Cost $5 &amp; &lt;up&gt;" in page and "No token-entanglement measurement" in page
    assert 'data-metric="exposure@10"' not in page and "Concept fans" not in page


def test_attack_panel_shows_each_attacked_method_with_retrain_as_reference(tmp_path):
    results = synthetic_results(second_pair=False)
    for row in results["rows"]:
        if row["method"] != "original":  # the Original is not attacked
            row["attack_exposure@10"] = {"retrain": 0.1, "tracer": 0.3, "ga": 0.5}[row["method"]]
            row["probe_auc"] = {"retrain": 0.70, "tracer": 0.71, "ga": 0.80}[row["method"]]
    page = write_report(write_results(tmp_path / "r", results)).read_text(encoding="utf-8")
    panel = page[page.index('<table class="metrics attacks">') :]
    panel = panel[: panel.index("</table>")]
    rows = re.findall(r'<tr class="([^"]*)" data-method="([^"]+)">(.*?)</tr>', panel)
    assert [(css, method) for css, method, _ in rows] == [
        ("reference", "retrain"),
        ("", "tracer"),
        ("", "ga"),
    ]
    tracer_cells = dict(re.findall(r'data-metric="([^"]+)">([^<]+)', rows[1][2]))
    assert tracer_cells["attack_exposure@10"].startswith("0.3000") and tracer_cells["probe_auc"].startswith(
        "0.7100"
    )
    assert 'data-metric="benign_exposure@10"' not in panel  # no row measured it
