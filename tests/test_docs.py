"""The docs stand on their own: no reference to a file outside the repository, every link in
docs/method.md and README.md reaches an existing file and heading, and every "docs/method.md §N"
citation names a section that exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
METHOD = REPO / "docs" / "method.md"
LINK = re.compile(r"\]\(([^)\s]+)\)")
CITATION = re.compile(r"docs/method\.md,? §(\d+(?:\.\d+)?)")
OUTSIDE = re.compile("|".join(["METHOD" + r"\.md", "ARCHITECTURE" + r"\.md", r"\.\./shared"]))


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
    for document in (METHOD, REPO / "README.md"):
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
