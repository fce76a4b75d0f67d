"""Slide decks: built offline from the cells tagged for slides, one per chapter, nothing fetched."""

from __future__ import annotations

import re

import nbformat
import pytest

from course_lib.tooling import slides as S
from course_lib.tooling.notebook_runner import notebook_paths


def _nb(*cells):
    return nbformat.v4.new_notebook(cells=list(cells))


def test_only_tagged_cells_are_shown_and_code_shows_its_output_alone():
    title = nbformat.v4.new_markdown_cell("# 99 · T", metadata={"tags": ["slide"]})
    hidden = nbformat.v4.new_markdown_cell("not on a slide")
    plot = nbformat.v4.new_code_cell("plot()", metadata={"tags": ["slide-more"]})
    code = nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["slide", "slide-code"]})
    shown = S.slideshow_notebook(_nb(title, hidden, plot, code))
    assert [c.metadata.slideshow["slide_type"] for c in shown.cells] == ["slide", "skip", "-", "slide"]
    assert shown.cells[2].metadata.transient["remove_source"] is True
    assert "transient" not in shown.cells[3].metadata                 # slide-code keeps its code
    with pytest.raises(ValueError, match="nothing to present"):
        S.slideshow_notebook(_nb(hidden))
    with pytest.raises(ValueError, match="must start a slide"):
        S.slideshow_notebook(_nb(plot, title))


def test_every_chapter_has_a_deck_that_opens_with_its_title():
    for path in notebook_paths():
        nb = nbformat.read(path, as_version=4)
        chosen = S.slide_cells(nb)
        assert len(chosen) >= 8, f"{path.name}: {len(chosen)} cells tagged for slides"
        assert chosen[0] == 0 and "slide" in nb.cells[0].metadata.tags


@pytest.mark.slow
def test_decks_build_offline_with_math_and_figures(tmp_path):
    decks = S.build_slides(tmp_path / "slides", only="01_")
    [deck] = decks
    html = deck.read_text(encoding="utf-8")
    nb = nbformat.read(next(p for p in notebook_paths() if p.name.startswith("01_")), as_version=4)
    slides = sum("slide" in c.metadata.get("tags", []) for c in nb.cells)
    assert html.count("<section") >= slides                      # one section per slide (subsections inside)
    assert "data:image/png;base64" in html and "\\sqrt" in html   # figures and (untypeset) math are there
    remote = re.findall(r"""<(?:script|link)[^>]+(?:src|href)=["'](https?://[^"']+)""", html)
    assert remote == [], remote                                   # reveal.js and MathJax come from beside the deck
    for asset in ("reveal/dist/reveal.js", "reveal/dist/theme/white.css", "reveal/plugin/notes/notes.js",
                  "mathjax/MathJax.js", "index.html"):
        assert (deck.parent / asset).exists(), asset
    assert 'src="reveal/dist/reveal.js"' in html or '"reveal/dist/reveal.js"' in html
    assert 'src="images/concept_attention_shapes.png"' in html                   # the concept diagram, copied
    assert (deck.parent / "images" / "concept_attention_shapes.png").exists()


def test_concept_diagrams_are_drawn_and_each_is_used_by_a_notebook(tmp_path):
    from course_lib.tooling import diagrams
    written = diagrams.draw_all(tmp_path)
    assert {p.stem for p in written} == set(diagrams.DIAGRAMS) and all(p.stat().st_size > 10_000 for p in written)
    sources = "\n".join(c.source for path in notebook_paths() for c in nbformat.read(path, as_version=4).cells
                        if c.cell_type == "markdown")
    for name in diagrams.DIAGRAMS:
        assert (diagrams.OUT / f"{name}.png").exists(), f"docs/images/{name}.png is not committed"
        assert f"](../docs/images/{name}.png)" in sources, f"no notebook shows {name}"
