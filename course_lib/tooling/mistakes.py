"""常见错误对照: each common mistake the notebooks demonstrate, where it fails, and the line the run printed.

The mistakes are data (``translations/common_mistakes.json``: the mistake and the fix in English and Chinese,
the notebook, the Markdown cell that explains it, the code cell whose output shows it failing, and a pattern
for that output line). The page (``docs/common_mistakes.zh.md``) is generated from that data and the committed
outputs of the English notebooks (the Chinese edition has the same outputs), so every number on it is one the
committed run printed; ``tests/test_translations.py`` fails when the page is stale or a pattern stops matching.

    python -m course_lib translate          # also rewrites the page
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat

from .translation import ROOT, catalog_path, load_catalog

__all__ = ["MISTAKES_FILE", "PAGE", "load_mistakes", "evidence_line", "build_page", "write_page", "page_problem"]

MISTAKES_FILE = ROOT / "translations" / "common_mistakes.json"
PAGE = ROOT / "docs" / "common_mistakes.zh.md"


def load_mistakes(path: Path = MISTAKES_FILE) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))


def _output_text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif out.get("output_type") == "error":
            parts.append(f"{out.get('ename')}: {out.get('evalue')}")
        elif "text/plain" in out.get("data", {}):
            parts.append(out["data"]["text/plain"])
    return "\n".join(part.rstrip("\n") for part in parts)    # a widget's text has no final newline


def evidence_line(notebook: Path, cell_id: str, pattern: str) -> str:
    """The one output line of cell ``cell_id`` that ``pattern`` matches; ValueError if not exactly one."""
    cells = [c for c in nbformat.read(notebook, as_version=4).cells if c.get("id") == cell_id]
    if len(cells) != 1 or cells[0].cell_type != "code":
        raise ValueError(f"{notebook.name}: no code cell {cell_id!r}")
    lines = [line for line in _output_text(cells[0]).splitlines() if re.search(pattern, line)]
    if len(lines) != 1:
        raise ValueError(f"{notebook.name}, cell {cell_id}: {len(lines)} output lines match {pattern!r}, expected 1")
    return lines[0].strip()


def _section(notebook: Path, cell_id: str, lang: str) -> str:
    """The section's title in ``lang``: the translated cell's first heading, else its first bold phrase or line."""
    entry = next(e for e in load_catalog(catalog_path(notebook, lang))["cells"] if e["id"] == cell_id)
    text = entry[lang]
    heading = re.search(r"^#+\s+(.+)$", text, re.M)
    if heading:
        return heading.group(1).strip()
    bold = re.match(r"\s*\*\*(.+?)\*\*", text)
    first = bold.group(1) if bold else re.split(r"(?<=[。？！])", text.strip().splitlines()[0])[0]
    return first if len(first) <= 40 else first[:40].rstrip() + "……"


def _code(text: str) -> str:
    fence = "``" if "`" in text else "`"
    cell = text.replace("|", "\\|")                                        # inside a table: | escaped
    return f"{fence}{cell}{fence}"


def build_page(lang: str = "zh") -> str:
    rows = []
    for m in load_mistakes():
        notebook = ROOT / "notebooks" / f"{m['notebook']}.ipynb"
        link = f"[{m['notebook']}](../notebooks-{lang}/{m['notebook']}.ipynb)"
        where = f"{link}，{_section(notebook, m['section_cell'], lang)}"
        line = evidence_line(notebook, m["evidence_cell"], m["pattern"])
        rows.append(f"| {m[lang]} | {m['fix_' + lang]} | {where} | {_code(line)} |")
    head = [
        "# 常见错误对照", "",
        "很多教程（包括不少中文博客）在下面这些地方出错。课程的笔记本逐一演示了它们：先让错误的写法",
        "在它破坏的机制上失败，并给出数字，再让修正后的写法通过。表中“本课程实测”一栏是该笔记本",
        "已提交输出中的原样打印行（`class` 档位，",
        "2 个 CPU 核心；中文版笔记本的代码与输出和英文版相同），由 `python3 course.py translate` 从",
        "`translations/common_mistakes.json` 生成，不是手写的数字。", "",
        "| 常见错误 | 课程的做法 | 在哪里（中文版笔记本，节） | 本课程实测（打印输出原文） |",
        "|---|---|---|---|",
    ]
    return "\n".join(head + rows) + "\n"


def page_problem(lang: str = "zh") -> str | None:
    """Why the committed page is not what the data and the committed outputs build (None: it is)."""
    try:
        built = build_page(lang)
    except ValueError as err:                               # a pattern no longer finds its output line
        return str(err)
    if not PAGE.exists() or PAGE.read_text(encoding="utf-8") != built:
        return f"{PAGE.name} is stale: run `python -m course_lib translate`"
    return None


def write_page(lang: str = "zh") -> Path:
    PAGE.write_text(build_page(lang), encoding="utf-8")
    return PAGE
