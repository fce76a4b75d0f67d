"""nbgrader, for real: the assignments the course writes, and nbgrader itself grading them.

The round trip runs nbgrader's own commands on chapter 01 (three exercises, smoke profile):
``generate_assignment`` makes the student version; ``autograde`` gives the reference solutions full
marks, the untouched student version zero, and one wrong answer loses exactly that exercise's point.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_lib.exercises.base import Verdict, require_correct
from course_lib.tooling import editions as E
from course_lib.tooling import grading as G
from course_lib.tooling.notebook_runner import notebook_paths

ROOT = Path(__file__).resolve().parents[1]


def test_require_correct_passes_a_correct_verdict_and_fails_with_the_checkers_message():
    ok = Verdict("softmax", "correct", "matches torch.softmax")
    assert require_correct(ok) is ok
    for status, message in (("wrong", "row sums are 2, expected 1"), ("not attempted", "still raises")):
        with pytest.raises(AssertionError, match=message):
            require_correct(Verdict("softmax", status, message))
    with pytest.raises(TypeError, match="Verdict"):
        require_correct(True)                              # a bare bool would hide the checker's message


def test_every_notebook_becomes_an_assignment_with_one_locked_test_per_checker():
    for path in notebook_paths():
        nb = nbformat.read(path, as_version=4)
        exercises = E.exercise_cells(nb, path.name)
        out = G.nbgrader_notebook(nb, path.name)
        answers = [c for c in out.cells if c.metadata.get("nbgrader", {}).get("solution")]
        tests = [c for c in out.cells if c.metadata.get("nbgrader", {}).get("grade")]
        assert len(answers) == len(exercises), path.name
        assert len(tests) == sum(len(ex.checkers) for ex in exercises), path.name
        for c in answers:
            assert c.metadata.nbgrader["grade"] is False and c.metadata.nbgrader["locked"] is False
        for c in tests:
            meta = c.metadata.nbgrader
            assert meta["locked"] and meta["points"] == 1 and not meta["solution"], path.name
            assert "require_correct(check_" in c.source
        # a test cell follows its answer cell, and everything else is the notebook unchanged, outputs cleared
        kept = [c for c in out.cells if c not in tests]
        assert [c.source for c in kept] == [c.source for c in nb.cells]
        assert all(not c.get("outputs") for c in out.cells if c.cell_type == "code")
        ids = [c.metadata.nbgrader["grade_id"] for c in answers + tests]
        assert len(ids) == len(set(ids))


def test_checker_calls_are_read_from_the_cell_in_order():
    source = "def f(x):\n    return x\n\nprint(check_b(f))\nif check_a(f, g).correct:\n    pass\n"
    assert G.checker_calls(source) == ["check_b(f)", "check_a(f, g)"]


def _nbgrader(*args: str, root: Path, env: dict) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={root}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
def test_nbgrader_round_trip_full_marks_zero_and_one_wrong_answer(tmp_path):
    pytest.importorskip("nbgrader")
    from nbgrader.api import Gradebook

    name = "01_attention"
    root = tmp_path / "course"
    [source] = G.write_source(root, only=name)
    # as `python3 course.py nbgrader ...` runs it: .venv's scripts on PATH (nbgrader calls `alembic` by name)
    env = {**os.environ, "COURSE_PROFILE": "smoke", "TQDM_DISABLE": "1", "MPLBACKEND": "Agg",
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    _nbgrader("generate_assignment", name, "--force", root=root, env=env)
    release = nbformat.read(root / "release" / name / f"{name}.ipynb", as_version=4)
    reference = nbformat.read(source, as_version=4)
    answer_ids = [c.metadata.nbgrader["grade_id"] for c in reference.cells
                  if c.metadata.get("nbgrader", {}).get("solution")]
    assert len(answer_ids) == 3
    assert all("BEGIN SOLUTION" not in c.source for c in release.cells)          # the student version has none

    def submission(student: str, answers: dict[str, str]) -> None:
        nb = nbformat.read(root / "release" / name / f"{name}.ipynb", as_version=4)
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid in answers:
                cell.source = answers[gid]
        folder = root / "submitted" / student / name
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{name}.ipynb")

    solved = {c.metadata.nbgrader["grade_id"]: c.source for c in reference.cells
              if c.metadata.get("nbgrader", {}).get("solution")}
    wrong_one = dict(solved)
    first = answer_ids[0]                                  # stable_softmax: a softmax that forgets the max shift
    wrong_one[first] = solved[first].replace(
        E.BEGIN, "return torch.exp(x) / torch.exp(x).sum(dim=dim, keepdim=True)\n    " + E.BEGIN, 1)
    assert wrong_one[first] != solved[first]
    submission("reference", solved)
    submission("untouched", {})
    submission("one_wrong", wrong_one)
    _nbgrader("autograde", name, "--force", root=root, env=env)

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        total = gb.find_assignment(name).max_score
        scores = {s: gb.find_submission(name, s).score for s in ("reference", "untouched", "one_wrong")}
    assert total == 3
    assert scores == {"reference": 3, "untouched": 0, "one_wrong": 2}, scores


def test_committed_nbgrader_config_points_at_the_generated_course():
    """nbgrader reads the committed config as traitlets does: the course folder is the one write_source fills."""
    from traitlets.config.loader import PyFileConfigLoader
    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    assert Path(config.CourseDirectory.root) == G.DEFAULT_ROOT
    assert config.ClearSolutions.code_stub == {"python": E.STUB}          # the student edition's stub
    assert config.Execute.timeout >= 900                                  # a chapter's training cell fits
