"""Which messages the library and the notebooks can print, so the Chinese catalog can be checked for gaps.

:mod:`course_lib.language` translates at run time from ``course_lib/data/messages_zh.json``. This
module finds what that catalog must hold, by reading the code (nothing runs):

* the library's own phrases: every ``tr("...")`` literal in ``course_lib`` (check lines, verdicts);
* exercise feedback: every ``ExerciseWrong(...)`` and ``Verdict(...)`` message in ``course_lib/exercises`` (an f-string
  becomes a template, ``{}`` for each value), the strings such a checker picks its message from,
  and each exercise's name (``run_checker``'s first argument);
* the notebooks' own words: the name of every ``check_true``/``check_close``, and every method,
  metric and ``over`` given to ``compare``, from the code and from the committed English outputs
  (names built in a loop are read there, as printed);
* figure text, in the notebooks and ``course_lib/notebook/viz.py``: titles, axis labels, legend labels
  and annotations (``set_title``, ``xlabel=``, ``label=``, ``ax.text``...).

``missing(entries)`` lists the messages without an entry; ``orphans(entries)`` the entries that no
message needs any more. ``python3 course.py translate --check`` reports both and the tests fail on them.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nbformat

from course_lib.language import CATALOG, WORDS

__all__ = ["ROOT", "library_messages", "notebook_messages", "wanted", "load_entries", "missing", "orphans",
           "add_missing", "untranslated", "problems"]

ROOT = Path(__file__).resolve().parents[2]
CHECKS = ("check_true", "check_close")
FIGURE_CALLS = {"set_title": 0, "set_xlabel": 0, "set_ylabel": 0, "suptitle": 0, "title": 0, "xlabel": 0,
                "ylabel": 0, "set_text": 0, "annotate": 0, "text": 2}     # the argument that holds the text
FIGURE_KEYWORDS = ("title", "xlabel", "ylabel", "label")
_COMPARE_HEADER = re.compile(r"^(.+) \((?:higher|lower) is better\), mean ± sd over (.+):$")
_COMPARE_ROW = re.compile(r"^  (.+?)\s+-?\d+\.\d{3} ± \d+\.\d{3}  \(n = \d+\)$")


def template(node: ast.AST) -> str | None:
    """A string literal as it is, an f-string with ``{}`` for each value; None for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return None


def _name(node: ast.AST) -> str:
    f = node.func if isinstance(node, ast.Call) else node
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def _keep(text: str | None) -> bool:
    """A message worth an entry: it has words outside its placeholders (``"{}"`` alone would match anything)."""
    return bool(text) and bool(WORDS.search(text.replace("{}", "")))


def templates(node: ast.AST) -> list[str]:
    """Every text an argument can be: ``a or f"x {b}"`` and ``a if c else "y"`` give each branch's template."""
    if isinstance(node, ast.BoolOp):
        return [t for value in node.values for t in templates(value)]
    if isinstance(node, ast.IfExp):
        return templates(node.body) + templates(node.orelse)
    text = template(node)
    return [text] if text is not None else []


def figure_texts(tree: ast.AST) -> set[str]:
    """Titles, axis labels, legend labels and annotations written in ``tree`` (literals and f-string templates,
    also as a branch of ``or`` / ``if ... else``)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        where = FIGURE_CALLS.get(_name(node)) if isinstance(node.func, ast.Attribute) else None
        if where is not None and len(node.args) > where:
            found.update(templates(node.args[where]))
        for kw in node.keywords:
            if kw.arg in FIGURE_KEYWORDS:
                found.update(templates(kw.value))
    return {t for t in found if _keep(t)}


def library_messages(root: Path = ROOT) -> set[str]:
    """The library's ``tr`` literals and the exercises' feedback, names and messages."""
    found: set[str] = set()
    for path in sorted((root / "course_lib").rglob("*.py")):
        if "tooling" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        exercise = path.parent.name == "exercises" and "solutions" not in path.parts
        if path.parent.name == "notebook" and path.name == "viz.py":
            found |= figure_texts(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and node.args:
                first = template(node.args[0])
                if _name(node) == "tr" and first:              # the library's own phrases and templates
                    found.add(first)
                elif exercise and _name(node) in ("ExerciseWrong", "run_checker") and _keep(first):
                    found.add(first)
                elif exercise and _name(node) == "Verdict" and len(node.args) == 3 and _keep(template(node.args[2])):
                    found.add(template(node.args[2]))
            if exercise and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                raises_variable = any(isinstance(n, ast.Call) and _name(n) == "ExerciseWrong" and n.args
                                      and isinstance(n.args[0], ast.Name) for n in ast.walk(node))
                if raises_variable:        # the message is picked from literals in a list or dict of slips
                    for n in ast.walk(node):
                        if isinstance(n, (ast.Tuple, ast.List, ast.Dict)):
                            items = n.keys if isinstance(n, ast.Dict) else n.elts
                            for item in items:
                                text = template(item) if item is not None else None
                                if _keep(text) and " " in text:
                                    found.add(text)
    return found


def notebook_messages(root: Path = ROOT) -> set[str]:
    """Check names and ``compare`` labels of the English notebooks: from their code and their outputs."""
    found: set[str] = set()
    for path in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            try:
                tree = ast.parse("\n".join(line for line in cell.source.splitlines()
                                           if not line.lstrip().startswith(("%", "!"))))
            except SyntaxError:
                continue
            found |= figure_texts(tree)
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                if _name(node) in CHECKS and node.args:
                    found.add(template(node.args[0]) or "")
                elif _name(node) == "compare":
                    for kw in node.keywords:
                        if kw.arg in ("metric", "over", "reference"):
                            found.add(template(kw.value) or "")
                    if node.args and isinstance(node.args[0], ast.Dict):
                        found.update(template(k) or "" for k in node.args[0].keys if k is not None)
                    if node.args and isinstance(node.args[0], ast.DictComp):
                        found.add(template(node.args[0].key) or "")
            for output in cell.get("outputs", []):
                text = output.get("text", "") if output.get("output_type") == "stream" else ""
                for line in text.splitlines():
                    header, row = _COMPARE_HEADER.match(line), _COMPARE_ROW.match(line)
                    if header:
                        found.update(header.groups())
                    elif row:
                        found.add(row.group(1))
    return {m for m in found if _keep(m)}


def wanted(root: Path = ROOT) -> set[str]:
    """Every message the Chinese catalog should translate."""
    return library_messages(root) | notebook_messages(root)


def load_entries(path: Path = CATALOG) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["messages"] if path.exists() else []


def missing(entries: list[dict], root: Path = ROOT) -> list[str]:
    have = {e["en"] for e in entries}
    return sorted(wanted(root) - have)


def orphans(entries: list[dict], root: Path = ROOT) -> list[str]:
    return sorted({e["en"] for e in entries} - wanted(root))


def untranslated(entries: list[dict]) -> list[str]:
    """Entries whose Chinese is empty, or loses or adds a placeholder."""
    bad = []
    for e in entries:
        count = len(re.findall(r"\{\d*\}", e["en"]))
        if not e.get("zh") or len(re.findall(r"\{\d*\}", e["zh"])) != count:
            bad.append(e["en"])
    return bad


def problems(path: Path = CATALOG, root: Path = ROOT) -> list[str]:
    """What ``translate --check`` reports about the message catalog, one line each."""
    entries = load_entries(path)
    where = path.relative_to(root) if path.is_relative_to(root) else path
    return ([f"{where}: missing message {m!r}" for m in missing(entries, root)]
            + [f"{where}: orphan message {m!r} (no code prints it)" for m in orphans(entries, root)]
            + [f"{where}: untranslated or placeholders differ: {m!r}" for m in untranslated(entries)])


def add_missing(path: Path = CATALOG, root: Path = ROOT) -> list[str]:
    """Add an empty entry for each missing message and drop orphans (``translate --update``); returns the added."""
    entries = [e for e in load_entries(path) if e["en"] not in set(orphans(load_entries(path), root))]
    added = missing(entries, root)
    entries += [{"en": m, "zh": ""} for m in added]
    entries.sort(key=lambda e: e["en"].lower())
    path.write_text(json.dumps({"language": "zh", "messages": entries}, ensure_ascii=False, indent=1) + "\n",
                    encoding="utf-8")
    return added
