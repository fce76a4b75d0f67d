"""Student and teacher editions of the notebooks: solutions out, checkers kept.

An exercise cell holds the learner's function with the reference body between a
``### BEGIN SOLUTION`` and a ``### END SOLUTION`` line, then a checker call
(``course_lib/exercises/<chapter>.py``). The student edition replaces exactly
those blocks, markers included, by ``raise NotImplementedError  # your code here``
(indented like the markers) and clears all outputs, so each checker reports
"not attempted" until the learner writes the body. The student edition holds no
solution code at all: notebooks and a README on installing ``course_lib``, whose
built wheel and plain (non-editable) install leave ``course_lib.exercises.solutions``
out (pyproject.toml). The teacher edition is the notebooks unchanged, a copy of the
reference solutions (``course_lib/exercises/solutions/``, present only in a checkout
of the repository) and an index of every exercise: notebook, cell, the functions to
write, the checker, and the matching solution function.

    python -m course_lib editions --out DIR    # DIR/student/, DIR/teacher/ (default artifacts/editions)
"""

from __future__ import annotations

import copy
import importlib
import inspect
import json
import re
import shutil
from dataclasses import asdict, dataclass, field
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["BEGIN", "END", "STUB", "SOLUTIONS", "strip_solutions", "student_notebook", "ExerciseCell", "exercise_cells",
           "checker_modules", "checkers", "solution_for", "make_editions"]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
STUB = "raise NotImplementedError  # your code here"

_EXERCISES = Path(__file__).resolve().parents[1] / "exercises"
SOLUTIONS = _EXERCISES / "solutions"      # in the repository only: a built wheel leaves it out
_SOLUTIONS_IMPORT = re.compile(r"\bcourse_lib\.exercises(?:\.solutions\b|\s+import\s+\(?[^)#\n]*\bsolutions\b)")
_DEF = re.compile(r"^def\s+([A-Za-z_]\w*)\s*\(", re.M)
_CHECK_CALL = re.compile(r"\b(check_\w+)\s*\(")
_CHECK_IMPORT = re.compile(r"from\s+course_lib\.exercises\.(\w+)\s+import\s+(\([^)]*\)|[^\n]+)")


def strip_solutions(source: str, where: str = "cell") -> str:
    """``source`` with every BEGIN/END SOLUTION block (markers included) replaced by the stub.

    Everything outside the blocks is kept byte for byte. Unbalanced or nested
    markers raise ``ValueError`` naming ``where`` and the line.
    """
    lines = source.split("\n")
    out: list[str] = []
    inside: int | None = None  # line number of the open BEGIN marker
    for i, line in enumerate(lines, 1):
        text = line.strip()
        if text == BEGIN:
            if inside is not None:
                raise ValueError(f"{where}: line {i} opens a solution block inside the one opened on line {inside}")
            inside = i
            out.append(line[: len(line) - len(line.lstrip())] + STUB)
        elif text == END:
            if inside is None:
                raise ValueError(f"{where}: line {i} closes a solution block that was never opened "
                                 f"(expected a '{BEGIN}' line before it)")
            inside = None
        elif inside is None:
            out.append(line)
        elif BEGIN in line or END in line:
            raise ValueError(f"{where}: line {i} has a solution marker that is not alone on its line")
    if inside is not None:
        raise ValueError(f"{where}: the solution block opened on line {inside} is never closed with '{END}'")
    return "\n".join(out)


def student_notebook(nb: Any, name: str = "notebook") -> Any:
    """A copy of ``nb`` (an nbformat v4 notebook) with solutions stubbed and every output cleared."""
    student = copy.deepcopy(nb)
    for i, cell in enumerate(student.cells):
        if cell.cell_type != "code":
            continue
        cell.source = strip_solutions(cell.source, f"{name} cell {i}")
        cell.outputs = []
        cell.execution_count = None
        cell.get("metadata", {}).pop("execution", None)
    student.metadata["course_edition"] = "student"
    return student


@dataclass
class ExerciseCell:
    """One exercise cell of a notebook: what the learner writes and which checker judges it."""

    notebook: str
    cell: int
    functions: list[str]                        # functions defined in the cell (the learner's)
    checkers: list[str]                         # check_* functions called in the cell
    modules: dict[str, str] = field(default_factory=dict)   # checker -> course_lib.exercises.<module>


def exercise_cells(nb: Any, name: str = "notebook") -> list[ExerciseCell]:
    """The cells with a solution block, with the functions they define and the checkers they call.

    Checker imports are looked up in the whole notebook, since a later exercise
    cell often reuses an import made by an earlier one.
    """
    imports: dict[str, str] = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            for module, names in _CHECK_IMPORT.findall(cell.source):
                for n in re.split(r"[,\s()]+", names):
                    if n.startswith("check_"):
                        imports[n] = f"course_lib.exercises.{module}"
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and any(line.strip() == BEGIN for line in cell.source.split("\n")):
            called = list(dict.fromkeys(_CHECK_CALL.findall(cell.source)))
            found.append(ExerciseCell(name, i, _DEF.findall(cell.source), called,
                                      {c: imports.get(c, "?") for c in called}))
    return found


def checker_modules() -> list[str]:
    """Names of the chapter checker modules in ``course_lib/exercises`` (not ``base``)."""
    return sorted(p.stem for p in _EXERCISES.glob("*.py") if p.stem not in {"__init__", "base"})


def checkers(module: ModuleType) -> dict[str, Callable]:
    """The public ``check_*`` functions of a checker module."""
    names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
    return {n: getattr(module, n) for n in names if n.startswith("check_") and callable(getattr(module, n))}


def _public_functions(module: ModuleType) -> dict[str, Callable]:
    return {n: f for n, f in inspect.getmembers(module, inspect.isfunction)
            if not n.startswith("_") and f.__module__ == module.__name__}


def solution_for(checker: Callable, solutions: ModuleType) -> list[Callable]:
    """The solution function(s) that ``checker`` should be called with, found by name.

    Each of the checker's parameters (except ``quiet``) is matched to a solution
    function: one with the parameter's name; else, for a one-argument checker
    ``check_X``, the function ``X``; else the only function whose name starts
    with the parameter's name. Raises ``LookupError`` when a match is missing
    or ambiguous, saying what to rename.
    """
    funcs = _public_functions(solutions)
    params = [p for p in inspect.signature(checker).parameters if p != "quiet"]
    stem = checker.__name__.removeprefix("check_")
    answers = []
    for p in params:
        if p in funcs:
            answers.append(funcs[p])
        elif len(params) == 1 and stem in funcs:
            answers.append(funcs[stem])
        else:
            prefixed = [n for n in funcs if n.startswith(p)]
            if len(prefixed) != 1:
                raise LookupError(f"{solutions.__name__} has no solution for {checker.__name__}'s argument {p!r}: "
                                  f"name it {p!r} or {stem!r} (functions there: {', '.join(sorted(funcs)) or 'none'})")
            answers.append(funcs[prefixed[0]])
    return answers


def _solution_index(exercises: Iterable[ExerciseCell]) -> list[dict[str, Any]]:
    rows = []
    for ex in exercises:
        for check in ex.checkers:
            module_name = ex.modules.get(check, "?")
            chapter = module_name.rsplit(".", 1)[-1]
            row = {**asdict(ex), "checker": f"{module_name}.{check}",
                   "solutions_module": f"course_lib.exercises.solutions.{chapter}", "solution": None}
            del row["checkers"], row["modules"]
            try:
                fn = getattr(importlib.import_module(module_name), check)
                sol = importlib.import_module(row["solutions_module"])
                row["solution"] = [f.__name__ for f in solution_for(fn, sol)]
            except (ImportError, AttributeError, LookupError, ValueError) as err:
                row["solution_error"] = str(err)
            rows.append(row)
    return rows


_STUDENT_README = f"""# Student edition

The course notebooks with every exercise left for you: each solution is replaced by
`{STUB}`, and every output is cleared. Write the function
body, run the cell, and its checker says whether it is right.

The notebooks import `course_lib`. Install it without the reference solutions, from the
wheel your teacher hands out (`pip install course_lib-*.whl`) or from the course repository
as a plain install (`pip install PATH_TO_REPOSITORY`, not `-e`): neither contains
`course_lib.exercises.solutions`.
"""


def make_editions(out_dir: str | Path = "artifacts/editions",
                  notebooks: Iterable[Path] | None = None) -> dict[str, Any]:
    """Write ``out_dir/student/*.ipynb`` and ``out_dir/teacher/`` (see the module docstring); return the index."""
    import nbformat

    from .notebook_runner import notebook_paths

    if not SOLUTIONS.is_dir():
        raise FileNotFoundError(f"{SOLUTIONS} is missing: the teacher edition copies the reference solutions, which "
                                f"only a checkout of the course repository has (a pip-installed course_lib leaves "
                                f"them out). Run this from the repository, installed with `pip install -e .`")
    out = Path(out_dir)
    paths = list(notebooks) if notebooks is not None else notebook_paths()
    student_dir, teacher_dir = out / "student", out / "teacher"
    for folder in (student_dir, teacher_dir):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    all_exercises: list[ExerciseCell] = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        student = student_notebook(nb, path.name)
        for i, cell in enumerate(student.cells):
            if cell.cell_type == "code" and _SOLUTIONS_IMPORT.search(cell.source):
                raise ValueError(f"{path.name} cell {i} imports the reference solutions: the student edition "
                                 f"would hand out the answers (and fail where course_lib is pip-installed)")
        nbformat.write(student, student_dir / path.name)
        shutil.copy2(path, teacher_dir / path.name)
        all_exercises += exercise_cells(nb, path.name)
    (student_dir / "README.md").write_text(_STUDENT_README)
    shutil.copytree(SOLUTIONS, teacher_dir / "solutions", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    rows = _solution_index(all_exercises)
    index = {"notebooks": [p.name for p in paths], "exercises": rows}
    (teacher_dir / "solutions_index.json").write_text(json.dumps(index, indent=2) + "\n")
    lines = ["# Exercise solutions (teacher edition)", "",
             "Students get `student/`: the same notebooks with each solution replaced by "
             f"`{STUB}` and outputs cleared. Reference solutions: `solutions/` here "
             "(= `course_lib/exercises/solutions/`).", "",
             "| notebook | cell | learner writes | checker | solution |", "|---|---|---|---|---|"]
    for r in rows:
        sol = ", ".join(f"`{r['solutions_module']}.{s}`" for s in r["solution"]) if r["solution"] else \
            f"missing: {r.get('solution_error', '?')}"
        lines.append(f"| {r['notebook']} | {r['cell']} | {', '.join(f'`{f}`' for f in r['functions'])} "
                     f"| `{r['checker']}` | {sol} |")
    (teacher_dir / "SOLUTIONS.md").write_text("\n".join(lines) + "\n")
    return index
