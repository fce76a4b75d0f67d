"""Translated editions of the notebooks, generated from the English notebooks so they never drift.

One source: the English notebook (``notebooks/NN_name.ipynb``) plus a translation catalog
(``translations/<lang>/NN_name.json``) with one entry per Markdown cell, keyed by the cell's id::

    {"id": ..., "source_sha256": <hash of the English text translated>, "en": <that English text>, "zh": <translation>}

The edition (``notebooks-<lang>/NN_name.ipynb``, beside ``notebooks/`` so every relative path in the code
works unchanged) is the English notebook with each Markdown cell replaced by its translation; its code
cells are the English ones, with one declared difference (``SWITCH``): the first code cell starts by
switching the library's messages (check lines, verdicts, exercise feedback) to the edition's language
(:mod:`course_lib.language`). So the edition's outputs are its own: ``run_editions`` executes it and
records the hash of the code it ran; rebuilding keeps those outputs while the code is unchanged.

A translation is *stale* when the English cell's hash differs from ``source_sha256``, *missing* when a
Markdown cell has no (non-empty) entry; an entry whose cell is gone is an *orphan*; a committed edition
that differs from what the catalog builds is *out of date*; one whose code changed since it was run is
*not run*; a code cell that differs from the English one (bar ``SWITCH``) is *code differs*. The test
command fails on any of them.

Maintainers' workflow (``docs/maintainers.md``)::

    python -m course_lib translate --update    # new English cells get an empty entry; a changed one keeps its
                                               # translation and gets "en_before" (the old English) to compare
    (edit "zh"; delete "en_before" when the translation matches "en")
    python -m course_lib translate --update    # accepts edited entries (their hash becomes the English one's)
    python -m course_lib translate             # rebuild notebooks-<lang>/ (keeps outputs whose code is unchanged)
    python -m course_lib translate --run 05    # execute editions (here 05) whose code changed: their outputs
    python -m course_lib translate --check     # list every problem; exit 1 if there is one
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .notebook_runner import code_hash

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = {"zh": "简体中文"}
ENGLISH = ROOT / "notebooks"
# the one code difference an edition has: its first code cell starts with this
SWITCH = {"zh": 'from course_lib.language import set_language\n'
                'set_language("zh")   # 中文版与英文版唯一不同的代码：检查行、比较结论和练习反馈用中文输出\n'}

__all__ = ["LANGUAGES", "SWITCH", "Problem", "source_hash", "catalog_path", "edition_path", "english_notebooks",
           "load_catalog", "update_catalog", "build_edition", "check", "write_editions", "run_editions",
           "doc_problems"]


@dataclass(frozen=True)
class Problem:
    notebook: str
    cell: str               # the Markdown cell's id ("" for the whole notebook)
    kind: str               # missing | stale | orphan | out of date | not run | code differs
    detail: str = ""

    def __str__(self) -> str:
        where = f"{self.notebook}" + (f", cell {self.cell}" if self.cell else "")
        return f"{where}: {self.kind}" + (f" ({self.detail})" if self.detail else "")


def source_hash(text: str) -> str:
    """The first 16 hex digits of the SHA-256 of a Markdown cell's English text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _language(lang: str) -> str:
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; expected one of: {', '.join(LANGUAGES)}")
    return lang


def english_notebooks(root: Path = ROOT) -> list[Path]:
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def catalog_path(notebook: Path, lang: str, root: Path = ROOT) -> Path:
    return root / "translations" / _language(lang) / f"{notebook.stem}.json"


def edition_path(notebook: Path, lang: str, root: Path = ROOT) -> Path:
    return root / f"notebooks-{_language(lang)}" / notebook.name


def load_catalog(path: Path) -> dict:
    """The catalog at ``path`` (an empty one if there is none yet)."""
    if not path.exists():
        return {"notebook": path.stem + ".ipynb", "language": path.parent.name, "cells": []}
    return json.loads(path.read_text(encoding="utf-8"))


def _save(path: Path, catalog: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(catalog, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def _markdown(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "markdown"]


def update_catalog(notebook: Path, lang: str, root: Path = ROOT) -> dict[str, int]:
    """Bring the catalog in step with the English notebook; the translations themselves are left to a person.

    New cells get an empty translation; a changed cell keeps its translation, its ``en`` becomes the new English
    and ``en_before`` the English it was translated from (it stays stale); an entry whose ``en_before`` was
    deleted and whose ``en`` is the current English is accepted (its hash updated); entries of removed cells
    are dropped. Returns counts of each.
    """
    path = catalog_path(notebook, lang, root)
    catalog = load_catalog(path)
    old = {e["id"]: e for e in catalog["cells"]}
    counts = {"added": 0, "changed": 0, "accepted": 0, "removed": 0}
    cells = []
    for cell in _markdown(nbformat.read(notebook, as_version=4)):
        now, entry = source_hash(cell.source), old.pop(cell.id, None)
        if entry is None:
            entry = {"id": cell.id, "source_sha256": "", "en": cell.source, lang: ""}
            counts["added"] += 1
        elif entry["source_sha256"] != now:
            if entry["en"] != cell.source:                           # the English changed: flag it
                entry.setdefault("en_before", entry["en"])
                entry["en"] = cell.source
                counts["changed"] += 1
            elif "en_before" not in entry and entry.get(lang):       # a person updated the translation
                entry["source_sha256"] = now
                counts["accepted"] += 1
        cells.append(entry)
    counts["removed"] = len(old)
    _save(path, {"notebook": notebook.name, "language": lang, "cells": cells})
    return counts


def _problems_in_catalog(notebook: Path, lang: str, root: Path) -> list[Problem]:
    nb = nbformat.read(notebook, as_version=4)
    entries = {e["id"]: e for e in load_catalog(catalog_path(notebook, lang, root))["cells"]}
    problems = []
    for cell in _markdown(nb):
        entry = entries.pop(cell.id, None)
        if entry is None or not entry.get(lang, "").strip():
            problems.append(Problem(notebook.name, cell.id, "missing", cell.source.splitlines()[0][:60]))
        elif entry["source_sha256"] != source_hash(cell.source) or "en_before" in entry:
            problems.append(Problem(notebook.name, cell.id, "stale", "the English cell changed since it was "
                                    "translated; run `python -m course_lib translate --update` and compare"))
    problems += [Problem(notebook.name, cid, "orphan", "no such Markdown cell in the English notebook")
                 for cid in entries]
    return problems


def _with_switch(nb, lang: str):
    """``nb`` (the English notebook, a copy) with the edition's switch at the top of its first code cell."""
    first = next(c for c in nb.cells if c.cell_type == "code")
    first.source = SWITCH[lang] + first.source
    return nb


def _code_problems(english, edition, name: str, lang: str) -> list[Problem]:
    """Code cells of the edition that are not the English ones (the first one: the English one after ``SWITCH``)."""
    mine = [c for c in edition.cells if c.cell_type == "code"]
    theirs = [c for c in _with_switch(copy.deepcopy(english), lang).cells if c.cell_type == "code"]
    if len(mine) != len(theirs):
        return [Problem(name, "", "code differs", f"{len(mine)} code cells, the English notebook has {len(theirs)}")]
    return [Problem(name, a.get("id", ""), "code differs", "only the first code cell may differ, by the language "
                    "switch") for a, b in zip(mine, theirs) if a.source != b.source]


def build_edition(notebook: Path, lang: str, root: Path = ROOT):
    """The ``lang`` edition of ``notebook`` as a notebook node; ValueError listing the problems if any.

    Outputs come from the committed edition's own run while its code is the code that run executed;
    otherwise the code cells have no outputs (``run_editions`` makes them).
    """
    problems = _problems_in_catalog(notebook, lang, root)
    if problems:
        raise ValueError(f"{len(problems)} translation problem(s) in {notebook.name}:\n"
                         + "\n".join(f"  {p}" for p in problems))
    nb = _with_switch(copy.deepcopy(nbformat.read(notebook, as_version=4)), lang)
    entries = {e["id"]: e for e in load_catalog(catalog_path(notebook, lang, root))["cells"]}
    for cell in _markdown(nb):
        cell.source = entries[cell.id][lang]
    nb.metadata.pop("jupytext", None)        # the edition has no py:percent twin: it is generated, not edited
    translation = {"language": lang, "source": f"notebooks/{notebook.name}",
                   "catalog": f"translations/{lang}/{notebook.stem}.json"}
    ran = _committed_run(edition_path(notebook, lang, root), code_hash(nb))
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = ran["outputs"].get(cell.get("id"), []) if ran else []
            cell.execution_count = ran["counts"].get(cell.get("id")) if ran else None
    if ran:
        translation["run"] = ran["run"]
        nb.metadata.update(ran["metadata"])            # the run's widget state and kernel details
    nb.metadata["translation"] = translation
    return nb


def _committed_run(edition: Path, code: str) -> dict | None:
    """The committed edition's outputs by cell id, when it was run on exactly this code; else None."""
    if not edition.exists():
        return None
    nb = nbformat.read(edition, as_version=4)
    run = nb.metadata.get("translation", {}).get("run")
    if not run or run.get("code_sha256") != code:
        return None
    cells = [c for c in nb.cells if c.cell_type == "code"]
    return {"run": run, "outputs": {c.get("id"): c.outputs for c in cells},
            "counts": {c.get("id"): c.execution_count for c in cells},
            "metadata": {k: nb.metadata[k] for k in ("widgets", "language_info") if k in nb.metadata}}


def check(lang: str, root: Path = ROOT) -> list[Problem]:
    """Every problem of the ``lang`` edition: stale, missing or orphan translations, code that differs from
    the English, an edition not run since its code changed, a committed edition that is out of date."""
    _language(lang)
    problems = []
    for notebook in english_notebooks(root):
        found = _problems_in_catalog(notebook, lang, root)
        problems += found
        edition = edition_path(notebook, lang, root)
        if found:
            continue
        if not edition.exists():
            problems.append(Problem(edition.name, "", "out of date", f"{edition} is missing"))
            continue
        committed = nbformat.read(edition, 4)
        problems += _code_problems(nbformat.read(notebook, 4), committed, edition.name, lang)
        built = build_edition(notebook, lang, root)
        if "run" not in built.metadata["translation"]:
            problems.append(Problem(edition.name, "", "not run", "its code changed since the edition was run (or it "
                                    f"never was): run `python -m course_lib translate --run {notebook.name[:2]}`"))
        elif nbformat.writes(built) != nbformat.writes(committed):
            problems.append(Problem(edition.name, "", "out of date", "it differs from what notebooks/ and the "
                                    "catalog build (code or text): run `python -m course_lib translate`"))
    return problems


def write_editions(lang: str, root: Path = ROOT) -> list[Path]:
    """Write ``notebooks-<lang>/`` from the English notebooks and their catalogs; the paths written."""
    written = []
    for notebook in english_notebooks(root):
        nb = build_edition(notebook, lang, root)
        out = edition_path(notebook, lang, root)
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out)
        written.append(out)
    return written


def run_editions(lang: str, only: str | None = None, profile: str = "class", root: Path = ROOT) -> bool:
    """Execute the ``lang`` editions (those whose name starts with ``only``) and commit their outputs.

    Each edition runs as a learner's notebook does (a finished checkpoint of the same model is loaded, as
    in class); the run's profile, machine time and the hash of the code it executed go into
    ``metadata.translation.run``. True when every edition passed.
    """
    import tempfile
    import time

    from .notebook_runner import run_notebooks

    ok = True
    for notebook in english_notebooks(root):
        if only and not notebook.name.startswith(only):
            continue
        nb = build_edition(notebook, lang, root)
        path = edition_path(notebook, lang, root)
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            passed = run_notebooks(profile=profile, out_dir=out, paths=[path])
            wall = round(time.perf_counter() - t0, 1)
            if not passed:
                ok = False
                continue
            ran = nbformat.read(Path(out) / path.name, as_version=4)
        ran.metadata["translation"]["run"] = {"code_sha256": code_hash(ran), "profile": profile, "wall_s": wall}
        nbformat.write(ran, path)
    return ok


_DOC_HEADER = re.compile(r"<!-- translated from ([\w./-]+), sha256 ([0-9a-f]{16});")


def doc_problems(lang: str, root: Path = ROOT) -> list[Problem]:
    """Translated guides (``docs/NAME.<lang>.md``) whose English source changed since they were translated.

    Such a guide starts with ``<!-- translated from docs/NAME.md, sha256 <16 hex digits>; ... -->``, the hash
    of the English file it translates; a guide whose source's hash differs is *stale* (translate the change,
    then put the new hash: ``python -m course_lib translate --check`` prints it).
    """
    problems = []
    for guide in sorted((root / "docs").glob(f"*.{lang}.md")):
        header = _DOC_HEADER.match(guide.read_text(encoding="utf-8"))
        if header is None:
            continue                                   # generated pages (the common-mistakes page) check themselves
        source = root / header.group(1)
        if not source.is_file():
            problems.append(Problem(guide.name, "", "orphan", f"its source {header.group(1)} does not exist"))
            continue
        now = source_hash(source.read_text(encoding="utf-8"))
        if now != header.group(2):
            problems.append(Problem(guide.name, "", "stale", f"{header.group(1)} changed since it was translated "
                                    f"(sha256 {header.group(2)} then, {now} now): translate the change, then "
                                    f"update the header"))
    return problems
