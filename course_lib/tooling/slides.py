"""One reveal.js slide deck per chapter, built offline from the cells tagged for slides.

A teacher presents a chapter from the same cells the learners read. Tags on a notebook's cells
choose them (JupyterLab: the property inspector, "Cell Tags"):

* ``slide``: this cell starts a new slide;
* ``slide-more``: this cell continues the slide before it (a figure under its heading);
* ``slide-code``: a tagged code cell shows its code too (otherwise a slide shows only its output).

Every other cell is left out. Nothing executes: slides show the committed ``class`` outputs, and each
live widget keeps only its static figure (as on the website). reveal.js 4.6.0 is vendored in
``course_lib/tooling/reveal/`` (MIT; THIRD_PARTY.md) and MathJax 2.7 comes from the
``jupyter-server-mathjax`` package, both copied beside the decks, so a deck opened from disk fetches
nothing from the network.

    python3 course.py slides            # artifacts/slides/index.html and one NN_name.slides.html per chapter
"""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import nbformat

from .notebook_runner import notebook_paths
from .site import MATHJAX, ROOT, _MATHJAX_LOCAL, chapter_title, static_outputs

__all__ = ["DEFAULT_OUT", "REVEAL", "slide_cells", "slideshow_notebook", "build_deck", "build_slides"]

DEFAULT_OUT = ROOT / "artifacts" / "slides"
REVEAL = Path(__file__).resolve().parent / "reveal"
# what nbconvert's reveal template would load from the network: jQuery, require.js, mermaid, widgets
_REMOTE_SCRIPT = re.compile(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>\s*", re.S)
_MERMAID = re.compile(r"<script type=\"module\">\s*import mermaid from '[^']*';.*?</script>\s*", re.S)
# nbconvert starts reveal through require.js and jQuery from a CDN; the decks start it with plain scripts instead
_REQUIRE_INIT = re.compile(r"<script>\s*require\(.*?</script>", re.S)
_INIT = """<script src="reveal/dist/reveal.js"></script>
<script src="reveal/plugin/notes/notes.js"></script>
<script>
Reveal.initialize({controls: true, progress: true, history: true, transition: "none", slideNumber: "c/t",
                   plugins: [RevealNotes], width: 1280, height: 800});
function courseSlideShown() {
  var slide = Reveal.getCurrentSlide();
  if (window.MathJax && MathJax.Hub) { MathJax.Hub.Queue(["Rerender", MathJax.Hub, slide]); }
  var room = document.querySelector(".reveal").clientHeight * 0.95;      // a long slide scrolls
  if (slide.scrollHeight > room) { slide.style.height = "95vh"; slide.style.overflowY = "auto"; }
}
Reveal.on("ready", courseSlideShown);
Reveal.on("slidechanged", courseSlideShown);
</script>"""


def slide_cells(nb) -> list[int]:
    """Indices of the cells tagged for slides, in order."""
    return [i for i, c in enumerate(nb.cells) if set(c.metadata.get("tags", [])) & {"slide", "slide-more"}]


def slideshow_notebook(nb):
    """A copy of ``nb`` with reveal's ``slideshow`` metadata set from the tags: the tagged cells, nothing else."""
    nb = static_outputs(nb)                                  # a copy, widget views replaced by their figures
    for cell in nb.cells:                                    # the diagrams are copied beside the decks
        if cell.cell_type == "markdown":
            cell.source = cell.source.replace("](../docs/images/", "](images/")
    chosen = slide_cells(nb)
    if not chosen:
        raise ValueError("no cell is tagged 'slide' or 'slide-more': nothing to present")
    first = nb.cells[chosen[0]].metadata.get("tags", [])
    if "slide" not in first:
        raise ValueError("the first tagged cell must start a slide (tag 'slide', not 'slide-more')")
    for cell in nb.cells:
        tags = set(cell.metadata.get("tags", []))
        kind = "slide" if "slide" in tags else "-" if "slide-more" in tags else "skip"
        cell.metadata["slideshow"] = {"slide_type": kind}
        if cell.cell_type == "code" and "slide-code" not in tags:
            cell.metadata.setdefault("transient", {})["remove_source"] = True     # the output alone
        if kind == "skip" and cell.cell_type == "code":
            cell.outputs = []
    return nb


def build_deck(path: Path, out: Path) -> Path:
    """Write ``out/<stem>.slides.html`` for the notebook at ``path``; return the file."""
    from nbconvert import SlidesExporter
    nb = slideshow_notebook(nbformat.read(path, as_version=4))
    exporter = SlidesExporter(reveal_url_prefix="reveal", reveal_theme="white", reveal_transition="none",
                              reveal_scroll=True, reveal_number="c/t", mathjax_url=MATHJAX,
                              exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb)
    body = _MERMAID.sub("", _REMOTE_SCRIPT.sub("", body))
    body, started = _REQUIRE_INIT.subn(lambda _: _INIT, body)
    if started != 1:
        raise RuntimeError("nbconvert's reveal template changed: its require(...) start-up script was not found")
    body = body.replace("<title>Notebook slides</title>", f"<title>{html.escape(chapter_title(nb))}</title>", 1)
    target = out / f"{path.stem}.slides.html"
    target.write_text(body, encoding="utf-8")
    return target


def build_slides(out: str | Path = DEFAULT_OUT, only: str | None = None) -> list[Path]:
    """Every chapter's deck (or those whose name starts with ``only``), the assets beside them, an index page."""
    import jupyter_server_mathjax
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for name, source in (("reveal", REVEAL), ("mathjax", Path(jupyter_server_mathjax.__file__).parent / "static"),
                         ("images", ROOT / "docs" / "images")):                 # the concept diagrams
        if (out / name).exists():
            shutil.rmtree(out / name)
        shutil.copytree(source, out / name)
    (out / "mathjax" / "config" / "local").mkdir(parents=True, exist_ok=True)
    (out / "mathjax" / "config" / "local" / "course.js").write_text(_MATHJAX_LOCAL, encoding="utf-8")
    decks, rows = [], []
    for path in notebook_paths():
        if only and not path.name.startswith(only):
            continue
        nb = nbformat.read(path, as_version=4)
        if not slide_cells(nb):
            continue
        deck = build_deck(path, out)
        decks.append(deck)
        count = sum("slide" in c.metadata.get("tags", []) for c in nb.cells)
        rows.append(f'<li><a href="{deck.name}">{html.escape(chapter_title(nb))}</a> ({count} slides)</li>')
    (out / "index.html").write_text(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Slides: self-supervised deep learning"
        "</title></head>\n<body><h1>Slides</h1>\n<p>One deck per chapter: arrow keys move, <kbd>s</kbd> opens the "
        "speaker view, <kbd>f</kbd> full screen.</p>\n<ul>\n" + "\n".join(rows) + "\n</ul>\n</body></html>\n",
        encoding="utf-8")
    return decks
