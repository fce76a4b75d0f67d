"""Notebook conventions for running anywhere and for classroom tools, applied idempotently.

``apply_run_anywhere(path)`` adds an "Open in Colab" badge under the title of the first
markdown cell and, at the top of the first code cell (the one that calls
``print_environment`` and ``resolve_profile``), a guarded block that installs
``course_lib`` into the running kernel only when it cannot be imported: on Colab or in a
Jupyter that lacks the course. It installs ``$COURSE_LIB_SOURCE`` when set (a local
checkout or any pip requirement), else the course from its repository, with its
dependencies (the data ship as packages), then the cell continues.

``apply_classroom_metadata(path)`` makes a notebook readable by nbgrader and papermill:

* every exercise cell (a ``### BEGIN SOLUTION`` / ``### END SOLUTION`` block, the markers
  nbgrader itself uses, followed by the checker call in the same cell) gets nbgrader cell
  metadata (schema 3) as an *autograded answer*: ``solution`` true, ``grade`` false, unlocked.
  ``nbgrader generate_assignment`` replaces each block by its stub (which raises
  ``NotImplementedError``, so the checker reports "not attempted", as in the student edition of
  ``course_lib.tooling.editions``). The points live in the locked test cells that
  :mod:`course_lib.tooling.grading` adds after each answer when it writes the nbgrader assignments;
* the profile cell (the first code cell) is tagged ``parameters`` for papermill. Papermill
  injects ``-p`` values in a cell right after it, so ``-p PROFILE smoke`` reaches every later
  cell while the first cell's environment report and seeding keep the default; to change those
  too, set the environment instead: ``COURSE_PROFILE=smoke papermill in.ipynb out.ipynb``;
* the kernelspec is ``python3`` with the display name ``Python 3 (ipykernel)``.

``write_paired_script(path)`` keeps a reviewable twin of each notebook: ``NN_name.py`` beside it in
jupytext's ``py:percent`` format (code and Markdown, no outputs), paired through the notebook's
``jupytext.formats`` metadata, so a diff of a notebook reads as a diff of Python. The test command fails
when a twin is stale (``tests/test_paired_scripts.py``); the pre-commit hook (``jupytext --sync``) and
``python -m course_lib run-notebooks --inplace`` rewrite it.

The repository address comes from one place, ``[project.urls] Repository`` in
``pyproject.toml``.

    python -m course_lib.tooling.notebook_conventions notebooks/*.ipynb   # all three, in place
    python -m course_lib.tooling.notebook_conventions --paired notebooks/*.ipynb      # only the py:percent twins
    python -m course_lib.tooling.notebook_conventions --classroom notebooks/*.ipynb   # only the classroom metadata
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Any

__all__ = ["repository_url", "colab_badge", "installer_block", "add_run_anywhere", "apply_run_anywhere",
           "classroom_metadata", "add_classroom_metadata", "apply_classroom_metadata", "BLOCK_START", "BLOCK_END",
           "KERNELSPEC", "NBGRADER_SCHEMA_VERSION", "PAIRED_FORMATS", "percent_script", "write_paired_script"]

_ROOT = Path(__file__).resolve().parents[2]
BLOCK_START = "# Run anywhere: on Colab or a Jupyter without the course, install course_lib into this kernel first."
BLOCK_END = "# (end of the run-anywhere block)"
_BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
PAIRED_FORMATS = "ipynb,py:percent"            # jupytext pairing: the notebook and its py:percent twin
NBGRADER_SCHEMA_VERSION = 3
_BEGIN, _END = "### BEGIN SOLUTION", "### END SOLUTION"
_DEF = re.compile(r"^def\s+([A-Za-z_]\w*)\s*\(", re.M)


def repository_url(pyproject: Path = _ROOT / "pyproject.toml") -> str:
    """The course repository's address, from ``[project.urls] Repository`` (no trailing slash)."""
    return tomllib.loads(pyproject.read_text())["project"]["urls"]["Repository"].rstrip("/")


def colab_badge(notebook_name: str, repo_url: str, branch: str = "main") -> str:
    """A markdown "Open in Colab" badge for ``notebooks/<notebook_name>`` of a GitHub repository."""
    match = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)(\.git)?", repo_url)
    if not match:
        raise ValueError(f"Colab opens notebooks from GitHub; expected https://github.com/OWNER/REPO, got {repo_url!r}")
    owner, repo = match.group(1), match.group(2)
    target = f"https://colab.research.google.com/github/{owner}/{repo}/blob/{branch}/notebooks/{notebook_name}"
    return f"[![Open In Colab]({_BADGE_IMAGE})]({target})"


def installer_block(repo_url: str) -> str:
    """The guarded install block that opens the first code cell (a no-op where course_lib imports)."""
    return "\n".join([
        BLOCK_START,
        "try:",
        "    import course_lib",
        "except ImportError:",
        "    import importlib, os, subprocess, sys",
        f'    source = os.environ.get("COURSE_LIB_SOURCE", "course-lib @ git+{repo_url}")',
        '    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", source], check=True)',
        "    importlib.invalidate_caches()",
        BLOCK_END,
    ])


def _without_block(source: str) -> str:
    lines = source.split("\n")
    if BLOCK_START not in lines:
        return source
    start, end = lines.index(BLOCK_START), lines.index(BLOCK_END)
    return "\n".join(lines[:start] + lines[end + 1:]).lstrip("\n")


def add_run_anywhere(nb: Any, name: str, repo_url: str | None = None) -> bool:
    """Put the badge and the installer block into ``nb`` (nbformat v4); return whether anything changed."""
    repo_url = repo_url or repository_url()
    before = [c.source for c in nb.cells]
    md = next(c for c in nb.cells if c.cell_type == "markdown")
    lines, badge = md.source.split("\n"), colab_badge(name, repo_url)
    old = [i for i, line in enumerate(lines) if _BADGE_IMAGE in line]
    if old:
        lines[old[0]] = badge
    elif lines[0].startswith("#"):
        lines[1:1] = ["", badge]                 # under the title
    else:
        lines[0:0] = [badge, ""]
    md.source = "\n".join(lines)
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.source = installer_block(repo_url) + "\n\n" + _without_block(code.source)
    return [c.source for c in nb.cells] != before


def _grade_id(stem: str, functions: list[str], used: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_-]", "_", f"{stem}-{'-'.join(functions) or 'exercise'}")
    grade_id, n = base, 2
    while grade_id in used:
        grade_id, n = f"{base}-{n}", n + 1
    used.add(grade_id)
    return grade_id


def classroom_metadata(source: str, grade_id: str) -> dict[str, Any] | None:
    """nbgrader metadata (schema 3) for a code cell's source, or None when it is not an exercise cell."""
    lines = [line.strip() for line in source.split("\n")]
    if _BEGIN not in lines or _END not in lines:
        return None
    return {"grade": False, "grade_id": grade_id, "locked": False, "schema_version": NBGRADER_SCHEMA_VERSION,
            "solution": True, "task": False}


def add_classroom_metadata(nb: Any, name: str) -> bool:
    """nbgrader metadata on exercise cells, the ``parameters`` tag, one kernelspec; return whether ``nb`` changed."""
    import copy
    before = copy.deepcopy([dict(c.metadata) for c in nb.cells]), copy.deepcopy(dict(nb.metadata))
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    first = next(c for c in nb.cells if c.cell_type == "code")
    tags = first.metadata.setdefault("tags", [])
    if "parameters" not in tags:
        tags.append("parameters")
    used: set[str] = set()
    stem = Path(name).stem
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        meta = classroom_metadata(cell.source, _grade_id(stem, _DEF.findall(cell.source), used))
        if meta is None:
            cell.metadata.pop("nbgrader", None)
        else:
            cell.metadata["nbgrader"] = meta
    return (copy.deepcopy([dict(c.metadata) for c in nb.cells]), dict(nb.metadata)) != before


def _apply(path: str | Path, change) -> bool:
    import nbformat
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    changed = change(nb, path.name)
    if changed:
        nbformat.write(nb, path)
    return changed


def apply_run_anywhere(path: str | Path, repo_url: str | None = None) -> bool:
    """:func:`add_run_anywhere` on the notebook file at ``path``, in place; writes only if it changed."""
    return _apply(path, lambda nb, name: add_run_anywhere(nb, name, repo_url))


def apply_classroom_metadata(path: str | Path) -> bool:
    """:func:`add_classroom_metadata` on the notebook file at ``path``, in place; writes only if it changed."""
    return _apply(path, add_classroom_metadata)


def percent_script(nb: Any) -> str:
    """The notebook as jupytext ``py:percent`` text (what its paired ``.py`` twin must hold)."""
    import jupytext
    return jupytext.writes(nb, fmt="py:percent")


def write_paired_script(path: str | Path) -> bool:
    """Pair the notebook at ``path`` with its ``.py`` twin (py:percent) and write it; True if anything changed."""
    import nbformat
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    changed = False
    if nb.metadata.get("jupytext", {}).get("formats") != PAIRED_FORMATS:
        nb.metadata.setdefault("jupytext", {})["formats"] = PAIRED_FORMATS
        nbformat.write(nb, path)
        changed = True
    twin, text = path.with_suffix(".py"), percent_script(nb)
    if not twin.exists() or twin.read_text(encoding="utf-8") != text:
        twin.write_text(text, encoding="utf-8")
        changed = True
    return changed


def main(argv: list[str]) -> int:
    if not argv or {"-h", "--help"} & set(argv):
        print(__doc__)
        return 0 if argv else 2
    only = argv[0] if argv[0] in ("--paired", "--classroom") else None     # one convention, not all three
    for path in argv[1:] if only else argv:
        ran = apply_run_anywhere(path) if only is None else False
        classroom = apply_classroom_metadata(path) if only in (None, "--classroom") else False
        paired = write_paired_script(path) if only in (None, "--paired") else False
        print(f"{path}: {'changed' if ran or classroom or paired else 'already up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
