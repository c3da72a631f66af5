"""The docs stand on their own: no reference to a file outside the repository, every link in
docs/method.md, README.md, BENCHMARKS.md and docs/benchmarks/*.md reaches an existing file and heading,
every "docs/method.md §N" citation names a section that exists and every 'docs/benchmarks/<topic>.md,
"<heading>"' citation a heading of that file. BENCHMARKS.md is a headline page: at most 300 lines, the
goals table first, every number linked to its section, and the index of the lab notes up to date."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from benchmarks import run_all

REPO = Path(__file__).resolve().parents[1]
METHOD = REPO / "docs" / "method.md"
LINK = re.compile(r"\]\(([^)\s]+)\)")
CITATION = re.compile(r"docs/method\.md,? §(\d+(?:\.\d+)?)")
OUTSIDE = re.compile("|".join(["METHOD" + r"\.md", "ARCHITECTURE" + r"\.md", r"\.\./shared"]))
PAGE = REPO / "BENCHMARKS.md"
NOTES = sorted((REPO / "docs" / "benchmarks").glob("*.md"))
NOTE_CITATION = re.compile(r'docs/benchmarks/([\w-]+)\.md,\s*"([^"]+)"')
# the lab notes' old home and the citation style of the old concatenated page (split so that this file
# does not match them itself)
OLD_HOME = re.compile("|".join(["benchmarks/" + r"results/\w+\.md", "BENCHMARKS" + r'\.md,\s*"']))
VERDICTS = ("met", "missed", "open")
# digits that name rather than measure: NDCG@10, ML-100k, §8.13, code spans such as `ml-1m-deep`
NAMES = re.compile(r"@\d+|ML-\d+[kM]|§[\d.]+|`[^`]*`")


def repository_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    files = [REPO / name for name in listed if (REPO / name).is_file()]
    return [path for path in files if path.suffix in {".py", ".md", ".yaml", ".toml", ".sh", ".txt", ""}]


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in path.read_text().splitlines() if line.startswith("#")}


def test_slug_follows_github():
    assert slug(" Round 5: a KL-to-parent retain term (`retain_kl`, validation)") == (
        "round-5-a-kl-to-parent-retain-term-retain_kl-validation"
    )
    assert slug(" ML-100k Children's with `kl_branch_shares` (session 10)") == (
        "ml-100k-childrens-with-kl_branch_shares-session-10"
    )


def test_nothing_refers_to_files_outside_the_repository():
    offenders = [str(p.relative_to(REPO)) for p in repository_text_files() if OUTSIDE.search(p.read_text())]
    assert offenders == []


def test_links_in_the_docs_reach_files_and_headings():
    assert len(NOTES) >= 7
    for document in (METHOD, REPO / "README.md", PAGE, *NOTES):
        for target in LINK.findall(document.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            path, _, anchor = target.partition("#")
            resolved = (document.parent / path).resolve() if path else document
            assert resolved.exists(), f"{document.name}: {target}"
            if anchor:
                assert anchor in anchors(resolved), f"{document.name}: {target}"


def method_sections() -> set[str]:
    """Numbers of docs/method.md's sections: "## N." and "### N.M" headings, and the items "M." of a
    numbered list directly under "## N." (section N.M)."""
    found, chapter = set(), None
    for line in METHOD.read_text().splitlines():
        heading = re.match(r"(#{2,3}) (\d+(?:\.\d+)?)\.? ", line)
        if heading:
            found.add(heading.group(2))
            chapter = heading.group(2) if heading.group(1) == "##" else None
        elif chapter and (item := re.match(r"(\d+)\. ", line)):
            found.add(f"{chapter}.{item.group(1)}")
    return found


def test_citations_name_existing_sections():
    sections = method_sections()
    assert {"4.2", "6.9", "7.1", "8.3"} <= sections
    for path in repository_text_files():
        for section in CITATION.findall(path.read_text()):
            assert section in sections, f"{path.relative_to(REPO)} cites docs/method.md §{section}"


def test_citations_of_the_lab_notes_name_existing_headings():
    """'docs/benchmarks/erasure.md, "Round 5"' in a comment or docstring: the file exists and one of its
    headings starts with the quoted text (backticks ignored); nothing cites the notes' old home."""
    for path in repository_text_files():
        text = path.read_text()
        assert not OLD_HOME.search(text), f"{path.relative_to(REPO)} cites the old benchmarks/results notes"
        flat = re.sub(r"\s*\n\s*(?:#\s*)?", " ", text)  # comment and docstring lines joined
        for name, quoted in NOTE_CITATION.findall(flat):
            note = REPO / "docs" / "benchmarks" / f"{name}.md"
            assert note.is_file(), f"{path.relative_to(REPO)} cites {note.name}"
            titles = [heading.replace("`", "").lower() for _, heading in run_all.headings(note)]
            wanted = quoted.replace("`", "").lower()
            assert any(title.startswith(wanted) for title in titles), f"{path.relative_to(REPO)}: {quoted}"


def page_blocks(text: str) -> list[str]:
    """The page above its generated index, cut into table rows (headers and rules left out), list items
    and paragraphs."""
    blocks, current, previous_was_table = [], [], False
    for line in text.split(run_all.INDEX_START)[0].splitlines():
        if line.startswith("|"):
            blocks.append("\n".join(current))
            current = []
            if previous_was_table and not set(line) <= set("|-: "):
                blocks.append(line)
            previous_was_table = True
            continue
        previous_was_table = False
        if not line.strip() or line.startswith("#") or line.startswith("- "):
            blocks.append("\n".join(current))
            current = [line] if line.startswith("- ") else []
        else:
            current.append(line)
    return [block for block in blocks + ["\n".join(current)] if block.strip()]


def test_benchmarks_page_is_a_headline_page():
    text = PAGE.read_text()
    lines = text.splitlines()
    assert len(lines) <= run_all.MAX_LINES
    assert lines[0] == "# Benchmarks"
    headings = [line for line in lines if line.startswith("## ")]
    assert headings[0] == "## Goals"
    goals = lines.index("## Goals")
    first_table = next(i for i, line in enumerate(lines) if line.startswith("|"))
    assert goals < first_table < lines.index(headings[1]) and lines[first_table] == run_all.GOALS_HEADER
    rows = []
    for line in lines[first_table + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    assert len(rows) >= 20
    for issue, goal, measured, verdict, section in rows:
        assert issue.isdigit() and goal and measured, rows
        assert verdict.split()[0] in VERDICTS, f"verdict {verdict!r} of {goal!r}"
        assert LINK.search(section), f"no section linked for {goal!r}"
    assert {"23", "24", "26"} <= {row[0] for row in rows}
    run_all.check(text)  # what the rebuild checks


def test_every_number_on_the_benchmarks_page_links_to_its_section():
    for block in page_blocks(PAGE.read_text()):
        if re.search(r"\d", NAMES.sub("", block)):
            targets = LINK.findall(block)
            assert targets, f"a number without a link: {block[:120]!r}"
    for target in LINK.findall(PAGE.read_text().split(run_all.INDEX_START)[0]):
        if "#" in target:
            assert target.startswith("docs/benchmarks/"), target


def test_benchmarks_index_is_up_to_date():
    """The block that `python benchmarks/run_all.py --assemble-only` writes matches the lab notes."""
    text = PAGE.read_text()
    block = text.split(run_all.INDEX_START, 1)[1].split(run_all.INDEX_END, 1)[0]
    assert block.strip() == run_all.index().strip(), "run python benchmarks/run_all.py --assemble-only"
    for note in NOTES:
        assert f"](docs/benchmarks/{note.name})" in block, note.name


def test_assemble_rebuilds_the_index_and_refuses_a_long_page(tmp_path):
    page = tmp_path / "BENCHMARKS.md"
    text = PAGE.read_text()
    start, end = text.index(run_all.INDEX_START), text.index(run_all.INDEX_END)
    page.write_text(text[: start + len(run_all.INDEX_START)] + "\nstale\n" + text[end:])
    run_all.assemble(page)
    assert page.read_text() == text
    page.write_text(text.replace("## Erasure\n", "## Erasure\n" + "padding\n" * run_all.MAX_LINES))
    with pytest.raises(SystemExit, match="more than 300"):
        run_all.assemble(page)


def test_run_all_runs_the_benchmarks_unless_asked_to_assemble_only_and_refuses_unknown_flags(monkeypatch):
    runs = []
    monkeypatch.setattr(run_all, "run_benchmarks", lambda: runs.append("ran"))
    monkeypatch.setattr(run_all, "assemble", lambda: PAGE)
    run_all.main(["--assemble-only"])
    assert runs == []
    run_all.main([])
    assert runs == ["ran"]
    with pytest.raises(SystemExit) as error:
        run_all.main(["--asemble-only"])  # a typo must not start an hour of benchmarks
    assert error.value.code == 2 and runs == ["ran"]
