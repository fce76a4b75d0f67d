"""Every relative link in the notebooks and the docs points at a file that exists (and, for a heading
anchor in a Markdown file, at a heading that exists). ``course.py lab`` serves the repository root, so a
notebook's ``../docs/x.md`` resolves as it does on disk; the website's links are checked in test_site.py."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest

from course_lib.tooling.notebook_runner import notebook_paths

ROOT = Path(__file__).resolve().parents[1]
_MD_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")   # [text](target "title")
_IMG = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?\s*\)")
_HREF = re.compile(r"""(?:href|src)=["']([^"']+)["']""")


def relative_links(markdown: str) -> list[str]:
    """The relative targets of Markdown links, images and HTML href/src in ``markdown`` (code spans skipped)."""
    text = re.sub(r"```.*?```", "", markdown, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    found = _MD_LINK.findall(text) + _IMG.findall(text) + _HREF.findall(text)
    return [t for t in found if not urlsplit(t).scheme and not t.startswith(("#", "mailto:", "//"))]


def _anchors(markdown: str) -> set[str]:
    """GitHub-style heading anchors of a Markdown file (lower case, punctuation dropped, spaces to '-')."""
    heads = re.findall(r"^#{1,6}\s+(.+?)\s*#*$", re.sub(r"```.*?```", "", markdown, flags=re.S), re.M)
    slug = lambda h: re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")   # noqa: E731
    return {slug(h) for h in heads} | set(re.findall(r"""<a\s+(?:name|id)=["']([^"']+)["']""", markdown))


def _broken(source: Path, markdown: str) -> list[str]:
    bad = []
    for target in relative_links(markdown):
        parts = urlsplit(target)
        path = (source.parent / unquote(parts.path)).resolve() if parts.path else source
        if not path.exists():
            bad.append(f"{target} (no {path.relative_to(ROOT) if ROOT in path.parents else path})")
        elif parts.fragment and path.suffix == ".md" and parts.fragment not in _anchors(path.read_text()):
            bad.append(f"{target} (no heading #{parts.fragment} in {path.name})")
    return bad


def _documents() -> list[Path]:
    docs = [ROOT / "README.md", ROOT / "README.zh.md", ROOT / "CHANGELOG.md", ROOT / "THIRD_PARTY.md",
            *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "benchmarks").glob("*.md"))]
    return [p for p in docs if p.exists()]


def test_the_link_finder_sees_links_and_skips_code():
    md = "See [a](docs/a.md#x), ![fig](images/f.png), <a href=\"b.md\">b</a>, `[not](c.md)`, [web](https://x.org)."
    assert relative_links(md) == ["docs/a.md#x", "images/f.png", "b.md"]


@pytest.mark.parametrize("doc", _documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_of_a_doc_resolves(doc):
    assert _broken(doc, doc.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("path", [*notebook_paths(), *sorted((ROOT / "notebooks-zh").glob("[0-9][0-9]_*.ipynb"))],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_of_a_notebook_resolves(path):
    nb = nbformat.read(path, as_version=4)
    bad = [f"cell {i}: {b}" for i, c in enumerate(nb.cells) if c.cell_type == "markdown"
           for b in _broken(path, c.source)]
    assert bad == []
