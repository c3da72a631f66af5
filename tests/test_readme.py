"""The README's Python quick start runs as written on MovieLens-100k (a doctest): the printed numbers
match to within 0.01, and the erasure lowers Exposure@10 while keeping retain NDCG@10."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
NUMBER = re.compile(r"-?\d+\.\d+")
TOLERANCE = 0.01  # another CPU may sum floats in another order, and training amplifies it


def quick_start_block() -> str:
    """The ```python block of the README section "Python quick start"."""
    section = README.read_text().split("## Python quick start", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


class CloseNumbers(doctest.OutputChecker):
    """Output matches when its text is the same and every number is within TOLERANCE."""

    def check_output(self, want: str, got: str, optionflags: int) -> bool:
        if NUMBER.sub("#", want) != NUMBER.sub("#", got):
            return False
        pairs = zip(NUMBER.findall(want), NUMBER.findall(got), strict=True)
        return all(abs(float(a) - float(b)) <= TOLERANCE for a, b in pairs)


def test_closeness_is_within_tolerance_and_text_must_match():
    checker = CloseNumbers()
    assert checker.check_output("x 0.035 -> 0.004\n", "x 0.041 -> 0.000\n", 0)
    assert not checker.check_output("x 0.035 -> 0.004\n", "x 0.050 -> 0.004\n", 0)
    assert not checker.check_output("x 0.035 -> 0.004\n", "y 0.035 -> 0.004\n", 0)


def test_readme_quick_start_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    test = doctest.DocTestParser().get_doctest(quick_start_block(), {}, "README", str(README), 0)
    assert len(test.examples) >= 8
    report: list[str] = []
    result = doctest.DocTestRunner(checker=CloseNumbers()).run(test, out=report.append, clear_globs=False)
    assert result.failed == 0, "".join(report)
    before, after = test.globs["before"], test.globs["after"]
    assert after["exposure@10"] < before["exposure@10"] / 2
    assert after["retain_ndcg@10"] >= 0.8 * before["retain_ndcg@10"]
