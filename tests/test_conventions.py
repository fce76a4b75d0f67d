"""Classroom conventions (nbgrader metadata, papermill parameters, kernelspec) and maintainer configuration."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest

from course_lib.tooling import editions as E
from course_lib.tooling import notebook_conventions as NC
from course_lib.tooling.notebook_runner import notebook_paths

ROOT = Path(__file__).resolve().parents[1]

# nbgrader's cell metadata, schema version 3 (nbgrader.nbgraderformat.v3): the keys every marked cell
# carries, their types, and the rules nbgrader's validator applies to them.
_V3_KEYS = {"grade": bool, "grade_id": str, "locked": bool, "schema_version": int, "solution": bool, "task": bool}


def _validate_nbgrader_v3(meta: dict, where: str) -> None:
    assert set(_V3_KEYS) <= set(meta) <= set(_V3_KEYS) | {"points", "cell_type", "checksum"}, where
    for key, kind in _V3_KEYS.items():
        assert isinstance(meta[key], kind), f"{where}: {key} should be {kind.__name__}"
    assert meta["schema_version"] == 3, where
    assert meta["grade_id"] and all(ch.isalnum() or ch in "_-" for ch in meta["grade_id"]), where
    if meta["grade"]:
        assert isinstance(meta["points"], (int, float)) and meta["points"] > 0, f"{where}: graded cells have points"
    if meta["solution"]:
        assert not meta["locked"], f"{where}: an answer cell must stay editable"
    assert not (meta["task"] and (meta["grade"] or meta["solution"])), where


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Every course notebook, copied and converted (twice: the second pass must change nothing)."""
    out = tmp_path_factory.mktemp("classroom")
    paths = []
    for path in notebook_paths():
        copy = out / path.name
        shutil.copy(path, copy)
        NC.apply_classroom_metadata(copy)
        before = copy.read_bytes()
        assert NC.apply_classroom_metadata(copy) is False, f"{path.name}: a second pass changed it"
        assert copy.read_bytes() == before
        paths.append(copy)
    return paths


def test_exercise_cells_carry_nbgrader_metadata_and_nothing_else_does(converted):
    for path in converted:
        nb = nbformat.read(path, as_version=4)
        exercises = {ex.cell: ex for ex in E.exercise_cells(nb, path.name)}
        ids = []
        for i, cell in enumerate(nb.cells):
            meta = cell.metadata.get("nbgrader")
            if i not in exercises:
                assert meta is None, f"{path.name} cell {i} is not an exercise but has nbgrader metadata"
                continue
            _validate_nbgrader_v3(meta, f"{path.name} cell {i}")
            # an autograded answer: the points are in the locked test cells course_lib.tooling.grading adds
            assert meta["solution"] and not meta["grade"] and not meta["locked"] and "points" not in meta
            ids.append(meta["grade_id"])
        assert len(ids) == len(set(ids)) == len(exercises), f"{path.name}: grade ids must be unique"


def test_profile_cell_tagged_parameters_and_one_kernelspec(converted):
    for path in converted:
        nb = nbformat.read(path, as_version=4)
        first = next(c for c in nb.cells if c.cell_type == "code")
        assert first.metadata["tags"].count("parameters") == 1 and "resolve_profile(" in first.source
        assert [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])] == [first]
        assert nb.metadata.kernelspec == NC.KERNELSPEC


def test_conversion_changes_metadata_only(converted):
    for path in converted:
        old, new = nbformat.read(ROOT / "notebooks" / path.name, as_version=4), nbformat.read(path, as_version=4)
        assert [(c.cell_type, c.source, c.get("outputs")) for c in old.cells] == \
            [(c.cell_type, c.source, c.get("outputs")) for c in new.cells]


def test_nbgrader_stub_and_student_edition_agree(converted):
    """nbgrader replaces a solution block by a stub that raises NotImplementedError, as the student edition
    does, so the course's checker reports "not attempted" either way; the editions still read the notebook."""
    import torch  # noqa: F401 - the exercise cell of notebook 00 needs it

    nb = nbformat.read(next(p for p in converted if p.name.startswith("00_")), as_version=4)
    cell = next(c for c in nb.cells if "nbgrader" in c.metadata)
    nbgrader_stub = "# YOUR CODE HERE\nraise NotImplementedError()"        # nbgrader's default code stub
    lines, out, inside = cell.source.split("\n"), [], False
    for line in lines:                                                  # what nbgrader's ClearSolutions does
        if line.strip() == E.BEGIN:
            indent = line[: len(line) - len(line.lstrip())]
            out += [indent + s for s in nbgrader_stub.split("\n")]
            inside = True
        elif line.strip() == E.END:
            inside = False
        elif not inside:
            out.append(line)
    for source in (E.strip_solutions(cell.source), "\n".join(out)):
        namespace = {"torch": torch}
        exec(source, namespace)                                         # the cell's own checker call prints
        verdict = namespace["check_standardize"](namespace["standardize"])
        assert verdict.status == "not attempted", verdict
    assert E.student_notebook(nb).cells[nb.cells.index(cell)].metadata["nbgrader"]["solution"] is True


def test_ruff_and_pre_commit_configuration():
    import yaml
    ruff = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]
    assert ruff["line-length"] == 120 and {"E", "F", "W", "B", "UP"} <= set(ruff["lint"]["select"])
    assert "notebooks" not in ruff["extend-exclude"] and "notebooks/*.py" in ruff["extend-exclude"]   # .ipynb linted
    assert "F401" not in ruff["lint"]["per-file-ignores"]["notebooks/*.ipynb"]
    listed = subprocess.run([sys.executable, "-m", "ruff", "check", "--show-files"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert str(nb) in listed, f"ruff does not check {nb.name}"
    assert not any(line.endswith(".py") and "/notebooks/" in line for line in listed.splitlines())   # twins
    hooks = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())["repos"]
    ids = {h["id"] for repo in hooks for h in repo["hooks"]}
    assert {"ruff-check", "check-json", "end-of-file-fixer"} <= ids and "nbstripout" not in ids
    assert all(repo["rev"] for repo in hooks)
    fixers = [h for repo in hooks for h in repo["hooks"] if h["id"] in {"end-of-file-fixer", "trailing-whitespace"}]
    assert all(h.get("exclude") == r"\.ipynb$" for h in fixers), "committed notebooks are written by nbformat"
