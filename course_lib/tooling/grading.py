"""nbgrader assignments made from the course notebooks: autograded answers and locked test cells with points.

Each exercise cell of a chapter (the learner's function between ``### BEGIN SOLUTION`` and
``### END SOLUTION``, then the checker call that prints a friendly verdict) becomes an nbgrader
*autograded answer* (:func:`course_lib.tooling.notebook_conventions.classroom_metadata`). After it
comes one locked test cell per checker it calls, worth 1 point, which repeats the checker call and
*asserts* its verdict (:func:`course_lib.exercises.base.require_correct`): a wrong or unfinished answer
fails that cell with the checker's own message, and nbgrader gives it 0.

    python3 course.py nbgrader                                 # artifacts/nbgrader/source/<chapter>/<chapter>.ipynb
    python3 course.py nbgrader generate_assignment 01_attention   # the student version, in release/
    python3 course.py nbgrader autograde 01_attention             # scores every submitted/<student>/01_attention/

The committed ``nbgrader_config.py`` (repository root) points nbgrader at ``artifacts/nbgrader``;
``docs/classroom.md`` walks through the whole round trip. ``tests/test_grading.py`` runs it.
"""

from __future__ import annotations

import ast
import copy
from pathlib import Path
from typing import Any

from . import editions
from .notebook_conventions import NBGRADER_SCHEMA_VERSION, add_classroom_metadata

__all__ = ["checker_calls", "test_cell_source", "nbgrader_notebook", "write_source", "DEFAULT_ROOT"]

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "artifacts" / "nbgrader"
_TEST_HEADER = "# Autograder test (locked, 1 point): the course's checker must accept your answer above."


def checker_calls(source: str) -> list[str]:
    """The text of each ``check_*(...)`` call in an exercise cell, in order (e.g. ``check_x(my_x)``)."""
    tree = ast.parse(source)
    calls = [n for n in ast.walk(tree)
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id.startswith("check_")]
    calls.sort(key=lambda n: (n.lineno, n.col_offset))
    return list(dict.fromkeys(ast.get_source_segment(source, n) for n in calls))


def test_cell_source(call: str) -> str:
    """A locked autograder cell: run the checker again and fail unless its verdict is correct."""
    return f"{_TEST_HEADER}\nfrom course_lib.exercises.base import require_correct\n\nrequire_correct({call})"


def nbgrader_notebook(nb: Any, name: str) -> Any:
    """A copy of ``nb`` as an nbgrader source notebook: answer metadata, a test cell after each checker, no outputs."""
    import nbformat
    out = copy.deepcopy(nb)
    add_classroom_metadata(out, name)
    cells = []
    for cell in out.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
        answer = cell.metadata.get("nbgrader") if cell.cell_type == "code" else None
        if not answer:
            continue
        calls = checker_calls(cell.source)
        if not calls:
            raise ValueError(f"{name}: exercise cell {answer['grade_id']} calls no check_* function to grade it by")
        for k, call in enumerate(calls, 1):
            test = nbformat.v4.new_code_cell(test_cell_source(call))
            test.metadata["nbgrader"] = {"grade": True, "grade_id": f"{answer['grade_id']}-test{k}", "locked": True,
                                         "points": 1, "schema_version": NBGRADER_SCHEMA_VERSION, "solution": False,
                                         "task": False}
            test.metadata["editable"] = test.metadata["deletable"] = False
            cells.append(test)
    out.cells = cells
    return out


def write_source(root: str | Path = DEFAULT_ROOT, only: str | None = None) -> list[Path]:
    """Write ``root/source/<stem>/<stem>.ipynb`` for every course notebook (or those starting with ``only``)."""
    import nbformat
    from .notebook_runner import notebook_paths
    written = []
    for path in notebook_paths():
        if only and not path.name.startswith(only):
            continue
        nb = nbformat.read(path, as_version=4)
        if not editions.exercise_cells(nb, path.name):
            continue
        folder = Path(root) / "source" / path.stem
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / path.name
        nbformat.write(nbgrader_notebook(nb, path.name), target)
        written.append(target)
    return written
