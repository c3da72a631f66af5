"""The report renders in a real browser (headless Chromium): every image decodes, the tables are there,
and the page's Content-Security-Policy blocks nothing (so it asks for nothing outside itself).

A probe script (allowed through the policy by its hash only) is added to a copy of the report; after
the load event it writes what it measured into the DOM, which Chromium dumps."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
from pathlib import Path

import matplotlib.image
import pytest

from tests.helpers.report_results import synthetic_results, write_results
from tracer.reporting.html import CSP, write_report

CHROMIUM = Path("/usr/bin/chromium")
ENSURE_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "ensure-chromium.sh"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--virtual-time-budget=3000")  # fmt: skip
PROBE = """
(function () {
  var violations = [];
  document.addEventListener("securitypolicyviolation", function (event) {
    violations.push(event.violatedDirective + " " + event.blockedURI);
  });
  window.addEventListener("load", function () {
    var images = Array.prototype.map.call(document.images, function (img) {
      return {width: img.naturalWidth, height: img.naturalHeight, shown: img.getBoundingClientRect().width};
    });
    var probe = document.createElement("pre");
    probe.id = "probe";
    probe.textContent = JSON.stringify({
      images: images,
      tables: document.querySelectorAll("table.metrics").length,
      rows: document.querySelectorAll("table.metrics tbody tr").length,
      best: document.querySelectorAll("table.metrics td.best strong").length,
      concept_items: document.querySelectorAll("li.concept").length,
      violations: violations
    });
    document.body.appendChild(probe);
  });
})();
"""


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        subprocess.run(["bash", str(ENSURE_SCRIPT)], check=False, timeout=600)
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing and {ENSURE_SCRIPT} could not install it (needs root and apt-get)"
        )
    return CHROMIUM


def run_chromium(chromium: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [str(chromium), *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def probed_copy(report: Path) -> Path:
    """A copy of the report with PROBE inserted first in <head>, allowed by its sha256 and nothing else."""
    page = report.read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(PROBE.encode()).digest()).decode()
    assert page.count(CSP) == 1
    page = page.replace(CSP, f"{CSP}; script-src 'sha256-{digest}'")
    page = page.replace("<head>", f"<head><script>{PROBE}</script>", 1)
    copy = report.with_name("probed.html")
    copy.write_text(page, encoding="utf-8")
    return copy


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    folder = write_results(tmp_path_factory.mktemp("browser-results"), synthetic_results())
    return write_report(folder)


def test_images_load_and_tables_render_in_chromium(chromium, report, tmp_path):
    done = run_chromium(chromium, tmp_path / "profile", "--dump-dom", probed_copy(report).as_uri())
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"chromium wrote no probe result (exit {done.returncode}): {done.stderr[-2000:]}"
    probe = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert probe["violations"] == []
    assert len(probe["images"]) == 3
    for image in probe["images"]:
        assert image["width"] > 500 and image["height"] > 300 and image["shown"] > 300
    assert probe["tables"] == 2 and probe["rows"] == 8
    assert probe["best"] >= 2 * 6
    assert probe["concept_items"] == 2 * (2 + 3 * 4)  # per user: 2 history items + 4 in each of 3 lists


def test_screenshot_is_not_blank(chromium, report, tmp_path):
    shot = tmp_path / "shot.png"
    done = run_chromium(chromium, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2000",
                        report.as_uri())  # fmt: skip
    assert shot.is_file(), f"no screenshot (exit {done.returncode}): {done.stderr[-2000:]}"
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels[..., :3].std() > 0.1  # text, plots and tables, not an empty page
