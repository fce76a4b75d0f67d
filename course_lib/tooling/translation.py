"""Translated editions of the notebooks, generated from the English notebooks so they never drift.

One source: the English notebook (``notebooks/NN_name.ipynb``) plus a translation catalog
(``translations/<lang>/NN_name.json``) with one entry per Markdown cell, keyed by the cell's id::

    {"id": ..., "source_sha256": <hash of the English text translated>, "en": <that English text>, "zh": <translation>}

The edition (``notebooks-<lang>/NN_name.ipynb``, beside ``notebooks/`` so every relative path in the code
works unchanged) is the English notebook with each Markdown cell replaced by its translation; code cells,
their outputs and their metadata are the English ones (the same code gives the same outputs).

A translation is *stale* when the English cell's hash differs from ``source_sha256``, *missing* when a
Markdown cell has no (non-empty) entry; an entry whose cell is gone is an *orphan*; a committed edition
that differs from what the catalog builds is *out of date*. The test command fails on any of them.

Maintainers' workflow (``docs/maintainers.md``)::

    python -m course_lib translate --update    # new English cells get an empty entry; a changed one keeps its
                                               # translation and gets "en_before" (the old English) to compare
    (edit "zh"; delete "en_before" when the translation matches "en")
    python -m course_lib translate --update    # accepts edited entries (their hash becomes the English one's)
    python -m course_lib translate             # rebuild notebooks-<lang>/
    python -m course_lib translate --check     # list every problem; exit 1 if there is one
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = {"zh": "简体中文"}
ENGLISH = ROOT / "notebooks"

__all__ = ["LANGUAGES", "Problem", "source_hash", "catalog_path", "edition_path", "english_notebooks",
           "load_catalog", "update_catalog", "build_edition", "check", "write_editions"]


@dataclass(frozen=True)
class Problem:
    notebook: str
    cell: str               # the Markdown cell's id ("" for the whole notebook)
    kind: str               # missing | stale | orphan | out of date | unknown language
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


def build_edition(notebook: Path, lang: str, root: Path = ROOT):
    """The ``lang`` edition of ``notebook`` as a notebook node; ValueError listing the problems if any."""
    problems = _problems_in_catalog(notebook, lang, root)
    if problems:
        raise ValueError(f"{len(problems)} translation problem(s) in {notebook.name}:\n"
                         + "\n".join(f"  {p}" for p in problems))
    nb = copy.deepcopy(nbformat.read(notebook, as_version=4))
    entries = {e["id"]: e for e in load_catalog(catalog_path(notebook, lang, root))["cells"]}
    for cell in _markdown(nb):
        cell.source = entries[cell.id][lang]
    nb.metadata.pop("jupytext", None)        # the edition has no py:percent twin: it is generated, not edited
    nb.metadata["translation"] = {"language": lang, "source": f"notebooks/{notebook.name}",
                                  "catalog": f"translations/{lang}/{notebook.stem}.json"}
    return nb


def check(lang: str, root: Path = ROOT) -> list[Problem]:
    """Every problem of the ``lang`` edition: stale, missing or orphan translations, out-of-date notebooks."""
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
        elif nbformat.writes(build_edition(notebook, lang, root)) != nbformat.writes(nbformat.read(edition, 4)):
            problems.append(Problem(edition.name, "", "out of date", "it differs from what notebooks/ and the "
                                    "catalog build (code, outputs or text): run `python -m course_lib translate`"))
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
