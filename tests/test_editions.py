"""Student/teacher editions: exact stripping, student exercises say "not attempted", solutions pass every checker."""

from __future__ import annotations

import ast
import contextlib
import importlib
import io
import json
import re

import nbformat
import pytest

from course_lib.tooling import editions as E
from course_lib.tooling.notebook_runner import notebook_paths

NOTEBOOKS = notebook_paths()
# What an exercise cell may use without defining it (the notebooks' own import cells provide these).
PREAMBLE = "import math\nimport numpy as np\nimport torch\nimport torch.nn.functional as F\nfrom torch import nn\n"
VERDICT = re.compile(r"^([✓✗…]) (.+?): ", re.M)


def _read(path):
    return nbformat.read(path, as_version=4)


def _run_cells(sources: list[str], notebook_names: set[str]) -> str:
    """Execute cells in order in one fresh namespace; return what they printed.

    A cell may go on to use the notebook's own data once its checker has spoken
    (04: "if check_translate(...).correct: show translated digits"); a NameError
    for a name that the notebook defines elsewhere is accepted only after that
    cell printed its verdict.
    """
    namespace: dict = {"__name__": "__exercise__"}
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(PREAMBLE, "<preamble>", "exec"), namespace)
        for i, src in enumerate(sources):
            before = len(VERDICT.findall(buf.getvalue()))
            try:
                exec(compile(src, f"<exercise cell {i}>", "exec"), namespace)
            except NameError as err:
                if err.name not in notebook_names or len(VERDICT.findall(buf.getvalue())) == before:
                    raise
    return buf.getvalue()


def _notebook_names(nb) -> set[str]:
    """Names bound anywhere in the notebook's code cells (assignments, defs, imports)."""
    names: set[str] = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse("\n".join(line for line in cell.source.split("\n")
                                       if not line.lstrip().startswith(("%", "!"))))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


# ---- stripping ---------------------------------------------------------------------------------

def test_strip_replaces_only_the_solution_block():
    src = ("from x import check_f\n\ndef f(a):\n    \"\"\"doc\"\"\"\n    ### BEGIN SOLUTION\n    b = a + 1\n\n"
           "    return b\n    ### END SOLUTION\n\n\ncheck_f(f);")
    want = ("from x import check_f\n\ndef f(a):\n    \"\"\"doc\"\"\"\n    raise NotImplementedError  # your code here\n"
            "\n\ncheck_f(f);")
    assert E.strip_solutions(src) == want


def test_strip_keeps_indentation_and_several_blocks():
    src = "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n" \
          "class A:\n    def g(self):\n        ### BEGIN SOLUTION\n        return 2\n        ### END SOLUTION\n"
    out = E.strip_solutions(src)
    assert out == ("def f():\n    raise NotImplementedError  # your code here\nclass A:\n    def g(self):\n"
                   "        raise NotImplementedError  # your code here\n")


def test_strip_leaves_cells_without_markers_unchanged():
    src = "x = 1  # ### not a marker\nprint(x)\n"
    assert E.strip_solutions(src) == src


@pytest.mark.parametrize("bad, words", [
    ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "never closed"),
    ("def f():\n    return 1\n    ### END SOLUTION\n", "never opened"),
    ("    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n    ### END SOLUTION\n", "inside"),
    ("    ### BEGIN SOLUTION\n    x = 1  ### END SOLUTION\n    ### END SOLUTION\n", "not alone"),
])
def test_unbalanced_markers_are_errors(bad, words):
    with pytest.raises(ValueError, match=words):
        E.strip_solutions(bad, "nb cell 3")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_student_notebook_differs_only_in_solution_blocks(path):
    nb = _read(path)
    student = E.student_notebook(nb, path.name)
    assert len(student.cells) == len(nb.cells)
    for i, (a, b) in enumerate(zip(nb.cells, student.cells)):
        assert a.cell_type == b.cell_type
        if a.cell_type != "code":
            assert a.source == b.source
            continue
        assert b.outputs == [] and b.execution_count is None
        assert E.BEGIN not in b.source and E.END not in b.source
        if E.BEGIN in a.source:
            assert E.STUB in b.source
            # the text outside the block is untouched: removing the blocks from both gives the same lines
            outside = re.sub(r"\n[ \t]*### BEGIN SOLUTION\n.*?### END SOLUTION", "\n<BLOCK>", a.source, flags=re.S)
            assert re.sub(r"\n[ \t]*" + re.escape(E.STUB), "\n<BLOCK>", b.source) == outside
        else:
            assert a.source == b.source, f"cell {i} changed but has no solution block"
    # the original is not modified in place
    assert nb.metadata.get("course_edition") is None
    assert [c.source for c in nb.cells] == [c.source for c in _read(path).cells]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercise_functions_are_not_used_outside_their_cells(path):
    """Otherwise the student edition would crash after an exercise left unsolved."""
    nb = _read(path)
    exercises = E.exercise_cells(nb, path.name)
    owned = {f: ex.cell for ex in exercises for f in ex.functions}
    ex_cells = {ex.cell for ex in exercises}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and i not in ex_cells:
            for name, at in owned.items():
                if i > at:
                    assert not re.search(rf"\b{re.escape(name)}\s*\(", cell.source), (
                        f"cell {i} calls {name}() from exercise cell {at}; it fails in the student edition")


# ---- executing the exercise cells --------------------------------------------------------------

def _exercise_sources(nb, edition) -> list[str]:
    """The exercise cells of ``nb`` (found by their markers) as they read in ``edition``."""
    return [edition.cells[ex.cell].source for ex in E.exercise_cells(nb)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_student_exercises_report_not_attempted(path):
    nb = _read(path)
    exercises = E.exercise_cells(nb, path.name)
    if not exercises:
        pytest.skip(f"{path.name} has no exercises")
    printed = _run_cells(_exercise_sources(nb, E.student_notebook(nb, path.name)), _notebook_names(nb))
    verdicts = VERDICT.findall(printed)
    assert len(verdicts) == sum(len(ex.checkers) for ex in exercises), printed
    assert all(mark == "…" for mark, _ in verdicts), printed


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_solutions_pass_their_checkers(path):
    nb = _read(path)
    exercises = E.exercise_cells(nb, path.name)
    if not exercises:
        pytest.skip(f"{path.name} has no exercises")
    printed = _run_cells(_exercise_sources(nb, nb), _notebook_names(nb))
    verdicts = VERDICT.findall(printed)
    assert len(verdicts) == sum(len(ex.checkers) for ex in exercises), printed
    assert all(mark == "✓" for mark, _ in verdicts), printed


def test_every_exercise_cell_calls_a_known_checker():
    for path in NOTEBOOKS:
        for ex in E.exercise_cells(_read(path), path.name):
            assert ex.functions, f"{path.name} cell {ex.cell} has a solution block but defines no function"
            assert ex.checkers, f"{path.name} cell {ex.cell} has a solution block but calls no checker"
            for check, module in ex.modules.items():
                assert module.startswith("course_lib.exercises."), f"{path.name}: where does {check} come from?"
                assert hasattr(importlib.import_module(module), check)


# ---- the reference solutions module against every checker ---------------------------------------

@pytest.mark.parametrize("chapter", E.checker_modules())
def test_reference_solutions_pass_every_checker(chapter):
    module = importlib.import_module(f"course_lib.exercises.{chapter}")
    solutions = pytest.importorskip(f"course_lib.exercises.solutions.{chapter}")
    found = E.checkers(module)
    assert found, f"course_lib.exercises.{chapter} defines no check_* function"
    for name, check in found.items():
        answers = E.solution_for(check, solutions)
        with contextlib.redirect_stdout(io.StringIO()):
            verdict = check(*answers)
        assert verdict.correct, f"{name} with {solutions.__name__}: {verdict}"


def test_solution_lookup_explains_missing_names():
    import types

    from course_lib.exercises import start
    empty = types.ModuleType("course_lib.exercises.solutions.nothing")
    with pytest.raises(LookupError, match="standardize"):
        E.solution_for(start.check_standardize, empty)


# ---- the command -------------------------------------------------------------------------------

def test_make_editions_writes_student_and_teacher(tmp_path):
    from course_lib.__main__ import main
    paths = NOTEBOOKS[:2]
    index = E.make_editions(tmp_path / "ed", paths)
    for p in paths:
        student = _read(tmp_path / "ed" / "student" / p.name)
        assert student.metadata["course_edition"] == "student"
        assert not any(E.BEGIN in c.source for c in student.cells)
        assert (tmp_path / "ed" / "teacher" / p.name).read_bytes() == p.read_bytes()
    assert (tmp_path / "ed" / "teacher" / "solutions" / "start.py").exists()
    _assert_no_solutions(tmp_path / "ed" / "student")
    assert "pip install" in (tmp_path / "ed" / "student" / "README.md").read_text()
    saved = json.loads((tmp_path / "ed" / "teacher" / "solutions_index.json").read_text())
    assert saved == json.loads(json.dumps(index))
    assert all(r["solution"] for r in saved["exercises"]), saved
    assert "check_standardize" in (tmp_path / "ed" / "teacher" / "SOLUTIONS.md").read_text()
    assert main(["editions", "--out", str(tmp_path / "cli")]) == 0
    assert sorted(p.name for p in (tmp_path / "cli" / "student").glob("*.ipynb")) == [p.name for p in NOTEBOOKS]


def test_editions_into_a_file_is_a_one_line_error(tmp_path, capsys):
    from course_lib.__main__ import main
    target = tmp_path / "notes.txt"
    target.write_text("not a folder")
    assert main(["editions", "--out", str(target)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "Not a directory" in err and len(err.splitlines()) == 1
    assert target.read_text() == "not a folder"


# ---- the student edition holds no answers --------------------------------------------------------

def _assert_no_solutions(student_dir):
    """No solutions folder or module, no Python file, no solution block and no import of the solutions."""
    files = [p for p in student_dir.rglob("*")]
    assert not [p for p in files if "solutions" in p.relative_to(student_dir).parts], files
    assert not [p for p in files if p.suffix in {".py", ".pyc", ".whl", ".zip"}], files
    notebooks = [nbformat.read(p, as_version=4) for p in files if p.suffix == ".ipynb"]
    code = "\n".join(c.source for nb in notebooks for c in nb.cells if c.cell_type == "code")
    assert E.STUB in code and E.BEGIN not in code and not E._SOLUTIONS_IMPORT.search(code)


def test_student_edition_has_no_solutions(tmp_path):
    E.make_editions(tmp_path / "ed", NOTEBOOKS)
    _assert_no_solutions(tmp_path / "ed" / "student")
    assert (tmp_path / "ed" / "teacher" / "solutions" / "__init__.py").exists()


def test_a_notebook_importing_the_solutions_is_refused(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from course_lib.exercises.solutions.start import standardize")]
    nbformat.write(nb, tmp_path / "00_peek.ipynb")
    with pytest.raises(ValueError, match="imports the reference solutions"):
        E.make_editions(tmp_path / "ed", [tmp_path / "00_peek.ipynb"])


def test_editions_without_the_solutions_folder_say_why(tmp_path, monkeypatch):
    """A pip-installed course_lib has no solutions/: the teacher edition explains instead of crashing."""
    monkeypatch.setattr(E, "SOLUTIONS", tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="checkout of the course repository"):
        E.make_editions(tmp_path / "ed", NOTEBOOKS[:1])
    assert not (tmp_path / "ed").exists()
