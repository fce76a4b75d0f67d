"""The course website: built offline from the committed notebooks, every chapter a page with its figures."""

from __future__ import annotations

import re

import nbformat
import pytest

from course_lib.tooling.notebook_runner import notebook_paths
from course_lib.tooling.site import GUIDES, WIDGET_VIEW, build_site, chapter_title, static_outputs


def _pngs(nb) -> int:
    return sum("image/png" in out.get("data", {}) for c in nb.cells for out in c.get("outputs", []))


def test_widget_outputs_keep_only_their_static_fallback():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 99 · A title\n"), nbformat.v4.new_code_cell(
        "explore()", outputs=[nbformat.v4.new_output("display_data", data={
            WIDGET_VIEW: {"model_id": "x", "version_major": 2, "version_minor": 0},
            "image/png": "iVBORw0KGgo=", "text/plain": "Figure"}),
            nbformat.v4.new_output("display_data", data={WIDGET_VIEW: {"model_id": "y"}})])],
        metadata={"widgets": {"application/vnd.jupyter.widget-state+json": {}}})
    static = static_outputs(nb)
    assert [sorted(o.data) for o in static.cells[1].outputs] == [["image/png", "text/plain"]]
    assert "widgets" not in static.metadata and WIDGET_VIEW in nb.cells[1].outputs[0].data   # the input is untouched
    assert chapter_title(nb) == "99 · A title"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return build_site(tmp_path_factory.mktemp("site") / "site")


@pytest.mark.slow
def test_site_builds_offline_with_every_chapter_and_its_figures(site):
    out = site
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "Self-supervised deep learning" in index and 'src="images/attention_explorer.png"' in index
    assert (out / "images" / "attention_explorer.png").exists() and (out / "mathjax" / "MathJax.js").exists()
    for path in notebook_paths():
        nb = nbformat.read(path, as_version=4)
        page = out / f"{path.stem}.html"
        assert page.exists(), f"no page for {path.name}"
        html = page.read_text(encoding="utf-8")
        assert chapter_title(nb).split(":")[0] in html
        assert html.count("data:image/png;base64") >= _pngs(nb), f"{path.name}: figures missing on its page"
        assert f'href="{path.stem}.html"' in index                     # in the navigation of every page
    for _, name in GUIDES:
        assert (out / name.replace(".md", ".html")).exists(), name
    start = (out / "00_start_here.html").read_text(encoding="utf-8")
    assert 'href="glossary.html#notation"' in start and 'href="troubleshooting.html"' in start   # was ../docs/x.md
    assert "../docs/" not in start
    # both languages: the Chinese chapter pages, the header's language switch, the Chinese font and its CSS
    zh = (out / "zh-01_attention.html").read_text(encoding="utf-8")
    assert "注意力" in zh and 'hreflang="zh"' in zh and 'hreflang="en"' in zh
    switch = dict((lang, href) for href, lang in re.findall(r'<a href="([^"]+)" hreflang="(\w+)"', zh))
    assert switch.get("zh", "").endswith("README.zh.html") and switch.get("en", "").endswith("index.html"), switch
    assert (out / "fonts" / "NotoSansSC-CourseSubset.ttf").exists()
    assert "Course Noto Sans SC" in (out / "stylesheets" / "cjk.css").read_text() and "stylesheets/cjk.css" in zh
    # nothing is fetched from the network to read a page (the search shim only serves file:// search)
    remote = set(re.findall(r'<(?:script|img|link)[^>]+(?:src|href)="(https?://[^"]+)"', index))
    assert remote <= {"https://unpkg.com/iframe-worker/shim"}, remote


@pytest.mark.slow
def test_every_relative_link_of_the_site_resolves(site):
    """Each href/src of every page points at a file of the site (a notebook's ../docs/x.md became x.html)."""
    from urllib.parse import unquote, urlsplit
    out = site
    bad = []
    for page in sorted(out.rglob("*.html")):
        if "assets" in page.relative_to(out).parts or page.parent.name == "mathjax" or page.name == "404.html":
            continue                    # the theme's and MathJax's own files; 404.html is for a web server's root
        for target in re.findall(r"""(?:href|src)=["']([^"'#][^"']*)["']""", page.read_text(encoding="utf-8")):
            parts = urlsplit(target)
            if parts.scheme or target.startswith(("//", "mailto:")) or not parts.path:
                continue
            resolved = (page.parent / unquote(parts.path)).resolve()
            if resolved.is_dir():
                resolved = resolved / "index.html"
            if not resolved.exists():
                bad.append(f"{page.relative_to(out)}: {target}")
    assert bad == [], bad[:20]

