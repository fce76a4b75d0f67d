"""The course as a static website, rendered from the committed notebooks and their outputs.

Nothing executes: the pages show the outputs of the ``class`` run that made the committed
notebooks, as GitHub does, with the chapter sequence as navigation, the README as the home page,
and the glossary, troubleshooting, further reading and the other guides beside it.

Why MkDocs with mkdocs-jupyter (the ``[site]`` extra): it is pure Python, installs from the package
index like the rest of the course, renders notebooks through nbconvert (already a course
dependency) without executing them, and builds a site that also works opened from disk (the
Material theme's ``offline`` plugin, no web fonts). Jupyter Book 2 needs Node.js and the MyST
engine; Jupyter Book 1 would pull the whole Sphinx stack for the same result.

Live widgets cannot run without a kernel, so each widget output keeps only its static fallback (the
PNG an explorer draws, a progress bar's text) on the site.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from ..language import CJK_FONT
from .notebook_runner import NOTEBOOK_DIR, notebook_paths

__all__ = ["ROOT", "DEFAULT_OUT", "GUIDES", "EXTRA_PAGES", "chapter_title", "static_outputs", "build_site"]

ROOT = NOTEBOOK_DIR.parent
DEFAULT_OUT = ROOT / "artifacts" / "site"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# MathJax 2.7 from jupyter-server-mathjax, copied into the site; it ships the STIX-Web fonts only, which
# config/local/course.js selects (and the delimiters the Markdown pages use)
MATHJAX = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe,local/course"
_MATHJAX_LOCAL = """MathJax.Hub.Config({
  tex2jax: {inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]], displayMath: [["$$", "$$"], ["\\\\[", "\\\\]"]],
            processEscapes: true, processEnvironments: true},
  "HTML-CSS": {availableFonts: ["STIX-Web"], preferredFont: "STIX-Web", webFont: "STIX-Web", imageFont: null},
  SVG: {font: "STIX-Web"}
});
MathJax.Ajax.loadComplete("[MathJax]/config/local/course.js");
"""
# (page title, file under docs/) in navigation order; the README is the home page
GUIDES = [("Glossary and notation", "glossary.md"), ("Troubleshooting", "troubleshooting.md"),
          ("Further reading", "further_reading.md"), ("Classroom", "classroom.md"),
          ("Command line", "command_line.md"), ("GPUs", "gpus.md"), ("Benchmarks", "benchmarks.md"),
          ("Installing", "install.md"), ("Architecture", "architecture.md"), ("Reliability", "reliability.md"),
          ("Maintainers", "maintainers.md")]
# the Chinese guides, in the 中文版 section after the Chinese chapters (README.zh.md is that section's home)
GUIDES_ZH = [("常见错误对照", "common_mistakes.zh.md"), ("故障排除", "troubleshooting.zh.md"),
             ("安装", "install.zh.md"), ("课堂教学", "classroom.zh.md"), ("命令行", "command_line.zh.md"),
             ("GPU", "gpus.zh.md"), ("架构", "architecture.zh.md"), ("可靠性", "reliability.zh.md"),
             ("维护者指南", "maintainers.zh.md"), ("基准测试", "benchmarks.zh.md"),
             ("延伸阅读", "further_reading.zh.md")]
# pages from outside docs/ that the README and guides link to: (page title, path from the repository root)
EXTRA_PAGES = [("Third-party data and licences", "THIRD_PARTY.md"), ("Results (CPU)", "benchmarks/RESULTS.md"),
               ("Results (GPU)", "benchmarks/GPU.md"), ("中文首页", "README.zh.md")]
ZH_PREFIX = "zh-"          # the Chinese chapter pages: zh-NN_name.html beside the English NN_name.html
# Chinese glyphs for every page (text, code and notebook outputs), from the font the course ships; the
# unicode-range keeps Latin text in the theme's fonts
CJK_CSS = """@font-face {
  font-family: "Course Noto Sans SC";
  src: url("../fonts/NotoSansSC-CourseSubset.ttf") format("truetype");
  unicode-range: U+2E80-9FFF, U+3000-303F, U+FF00-FFEF;
  font-display: swap;
}
:root { --md-text-font: "Course Noto Sans SC"; --md-code-font: "Course Noto Sans SC"; }
body .jupyter-wrapper {
  --jp-content-font-family: "Course Noto Sans SC", system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
  --jp-ui-font-family: "Course Noto Sans SC", system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
  --jp-code-font-family: "Course Noto Sans SC", Menlo, Consolas, "DejaVu Sans Mono", monospace;
}
"""


def chapter_title(nb) -> str:
    """The notebook's first heading, e.g. '01 · Attention: ...'."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            match = re.search(r"^#\s+(.+)$", cell.source, re.M)
            if match:
                return match.group(1).strip()
    raise ValueError("a course notebook must start with a level-1 heading")


def static_outputs(nb):
    """The notebook with every live-widget view removed from its outputs (their static fallbacks remain)."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))          # a deep copy
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        kept = []
        for out in cell.get("outputs", []):
            data = out.get("data")
            if data is not None and WIDGET_VIEW in data:
                data.pop(WIDGET_VIEW)
                if not data:
                    continue
            kept.append(out)
        if cell.cell_type == "code":
            cell.outputs = kept
    return nb


def _rewrite_links(text: str) -> str:
    """Links as they must read inside the site, where README, docs/ and the notebooks share one folder:
    docs/x.md and ../x (from docs/) -> x, notebooks/NN.ipynb -> NN.ipynb, notebooks-zh/NN.ipynb -> zh-NN.ipynb
    (the Chinese chapter pages), README.md (the home page) -> index.md."""
    text = re.sub(r"\]\((?:\.\./)?notebooks-zh/", "](" + ZH_PREFIX, text)
    text = re.sub(r"\]\((?:docs/|\.\./|notebooks/)", "](", text)
    return re.sub(r"\]\(README\.md(?=[#)])", "](index.md", text)


def _notebook_links(nb, prefix: str = ""):
    """The notebook with its markdown links as they must read on the site, where every page is NAME.html in one
    folder: ../docs/x.md and ../x.md -> x.html, ../README.md -> index.html, NN.ipynb -> NN.html (a Chinese
    chapter, ``prefix="zh-"``: its sibling chapters are zh-NN.html, its README README.zh.html)."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            text = cell.source.replace("](../docs/images/", "](images/")     # the site copies docs/images/
            text = re.sub(r"\]\(\.\./README\.md", "](index.html" if not prefix else "](README.zh.html", text)
            text = re.sub(r"\]\((\d\d_[\w-]+)\.ipynb(?=[#)])", rf"]({prefix}\1.html", text)
            text = re.sub(r"\]\((?:\.\./docs/|\.\./)?([\w./-]+?)\.(?:md|ipynb)(?=[#)])", r"](\1.html", text)
            cell.source = text
    return nb


def _config(chapters: list[tuple[str, str]], guides: list[tuple[str, str]],
            chapters_zh: list[tuple[str, str]] = ()) -> str:
    """The MkDocs configuration; ``guides`` holds the English guides and the Chinese pages (``*.zh.md``), which
    go to the 中文版 section with the Chinese chapters."""
    nav = ["nav:", "  - Home: index.md", "  - Chapters:"]
    nav += [f"      - {json.dumps(title)}: {name}" for title, name in chapters]
    chinese = [(t, n) for t, n in guides if n.endswith(".zh.md")]
    home = [(t, n) for t, n in chinese if n == "README.zh.md"]
    rest = [(t, n) for t, n in chinese if n != "README.zh.md"]
    if chapters_zh or chinese:
        nav += ["  - 中文版:"] + [f"      - {json.dumps(title)}: {name}"
                                  for title, name in home + list(chapters_zh) + rest]
    nav += ["  - Guides:"] + [f"      - {json.dumps(title)}: {name}" for title, name in guides
                              if not name.endswith(".zh.md")]
    return "\n".join([
        "site_name: Self-supervised deep learning, hands on",
        "use_directory_urls: false          # pages open from disk as well as from a web server",
        "theme:",
        "  name: material",
        "  font: false                      # no web fonts: the site builds and reads offline",
        "  features: [navigation.sections, navigation.footer, toc.follow]",
        "plugins:",
        "  - search",
        "  - offline",
        "  - mkdocs-jupyter:",
        "      execute: false",
        "      cache: false",
        "      include_source: true",
        "      include_requirejs: false",
        "      ignore_h1_titles: false",
        f"      custom_mathjax_url: {MATHJAX}",
        "markdown_extensions:",
        "  - tables",
        "  - admonition",
        "  - pymdownx.arithmatex: {generic: true}",
        "extra_javascript:",
        f"  - {MATHJAX}",
        "extra_css:",
        "  - stylesheets/cjk.css",
        "extra:",
        "  alternate:                       # the language switch in the header: the home page of each edition",
        "    - {name: English, link: index.html, lang: en}",
        "    - {name: 中文, link: README.zh.html, lang: zh}",
        *nav, ""])


def build_site(out: str | Path = DEFAULT_OUT, *, quiet: bool = True) -> Path:
    """Render README, guides and notebooks into ``out`` with MkDocs; return the folder (``index.html`` inside)."""
    try:
        import jupyter_server_mathjax  # noqa: F401
        import mkdocs  # noqa: F401
        import mkdocs_jupyter  # noqa: F401
    except ImportError as err:
        raise ImportError(f"building the site needs the [site] extra ({err.name} is missing): "
                          f"pip install -e '.[site]', or run python3 course.py site") from err
    out = Path(out).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "docs"
        src.mkdir()
        (src / "index.md").write_text(_rewrite_links((ROOT / "README.md").read_text(encoding="utf-8")),
                                      encoding="utf-8")
        guides = [(title, name) for title, name in GUIDES + GUIDES_ZH if (ROOT / "docs" / name).exists()]
        for _, name in guides:
            (src / name).write_text(_rewrite_links((ROOT / "docs" / name).read_text(encoding="utf-8")),
                                    encoding="utf-8")
        for title, rel in EXTRA_PAGES:
            if (ROOT / rel).exists():
                (src / rel).parent.mkdir(parents=True, exist_ok=True)
                text = (ROOT / rel).read_text(encoding="utf-8")
                (src / rel).write_text(_rewrite_links(text), encoding="utf-8")
                for image in re.findall(r"!\[[^\]]*\]\(([\w./-]+\.png)\)", text):   # its figures, beside it
                    if not image.startswith("docs/") and (ROOT / rel).parent.joinpath(image).is_file():
                        shutil.copy((ROOT / rel).parent / image, (src / rel).parent / image)
                guides.append((title, rel))
        if (ROOT / "docs" / "images").is_dir():
            shutil.copytree(ROOT / "docs" / "images", src / "images")
        (src / "fonts").mkdir()
        shutil.copy(CJK_FONT, src / "fonts" / CJK_FONT.name)
        (src / "stylesheets").mkdir()
        (src / "stylesheets" / "cjk.css").write_text(CJK_CSS, encoding="utf-8")
        import jupyter_server_mathjax
        shutil.copytree(Path(jupyter_server_mathjax.__file__).parent / "static", src / "mathjax")
        (src / "mathjax" / "config" / "local").mkdir(parents=True, exist_ok=True)
        (src / "mathjax" / "config" / "local" / "course.js").write_text(_MATHJAX_LOCAL, encoding="utf-8")
        chapters = []
        for path in notebook_paths():
            nb = nbformat.read(path, as_version=4)
            nbformat.write(_notebook_links(static_outputs(nb)), src / path.name)
            chapters.append((chapter_title(nb).split(":")[0], path.name))     # "01 · Attention" in the navigation
        chapters_zh = []
        for path in sorted((ROOT / "notebooks-zh").glob("[0-9][0-9]_*.ipynb")):      # the Chinese edition
            nb = nbformat.read(path, as_version=4)
            nbformat.write(_notebook_links(static_outputs(nb), ZH_PREFIX), src / f"{ZH_PREFIX}{path.name}")
            chapters_zh.append((chapter_title(nb).split("：")[0].split(":")[0], f"{ZH_PREFIX}{path.name}"))
        config = Path(tmp) / "mkdocs.yml"
        config.write_text(_config(chapters, guides, chapters_zh), encoding="utf-8")
        cmd = [sys.executable, "-m", "mkdocs", "build", "--clean", "-f", str(config), "-d", str(out)]
        proc = subprocess.run(cmd + (["--quiet"] if quiet else []), capture_output=quiet, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"mkdocs build failed:\n{(proc.stderr or '')[-2000:]}")
    return out
