"""Notebook hygiene: order, environment cell, no errors, no absolute paths, outputs not stale."""

from __future__ import annotations

import json
import re

import nbformat
import pytest

from course_lib.tooling.notebook_runner import (LOCK_FILE, NOTEBOOK_DIR, chapters_used, code_hash, configs_hash,
                                               notebook_paths)

NOTEBOOKS = notebook_paths()
# a drive letter must start a word: "C:\Users" is a path, "SYRACUSE:\n" in a printed repr is not
ABSOLUTE_PATH = re.compile(r"(/work/|/home/\w|/Users/\w|/root/|/tmp/|(?<!\w)[A-Z]:\\\\)")


def _read(path):
    return nbformat.read(path, as_version=4)


def test_course_order():
    names = [p.name for p in NOTEBOOKS]
    assert names[0] == "00_start_here.ipynb"
    assert names == sorted(names) and len({n[:2] for n in names}) == len(names)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_reports_environment(path):
    first = next(c for c in _read(path).cells if c.cell_type == "code")
    assert "print_environment(" in first.source and "resolve_profile(" in first.source


def test_hygiene_guards_catch_what_they_guard():
    """The path pattern and the code hash used above: each fires on the fault and not on look-alikes."""
    assert ABSOLUTE_PATH.search(json.dumps("saved to C:\\Users\\me\\run"))
    assert ABSOLUTE_PATH.search(json.dumps("see /home/ada/course")) and ABSOLUTE_PATH.search("/tmp/x")
    assert not ABSOLUTE_PATH.search(json.dumps("'ANTIPHOLUS OF SYRACUSE:\\nThe duke'"))
    assert not ABSOLUTE_PATH.search(json.dumps("runs/rnn_lm-class/checkpoint.pt"))
    nb = _read(NOTEBOOKS[0])
    before = code_hash(nb)
    next(c for c in nb.cells if c.cell_type == "code").source += "\n# edited"
    assert code_hash(nb) != before
    assert NOTEBOOK_DIR.name == "notebooks"


def test_outputs_go_stale_when_a_printed_config_changes(monkeypatch):
    """Notebook 00 prints rnn_lm's profile table: a changed step budget must mark its outputs stale."""
    from course_lib.chapters import rnn_lm
    nb = _read(NOTEBOOKS[0])
    assert chapters_used(nb) == ["rnn_lm"]
    before = configs_hash(nb)
    monkeypatch.setitem(rnn_lm.Config.PROFILES, "class", {"train.steps": 2000})
    assert configs_hash(nb) != before
    assert chapters_used(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from course_lib.chapters import (mlm,\n    gan)\nimport course_lib.chapters.attention")])) == [
        "attention", "gan", "mlm"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_errors_no_absolute_paths_python3_kernel(path):
    nb = _read(path)
    assert nb.metadata.kernelspec.name == "python3"
    for i, cell in enumerate(nb.cells):
        assert not ABSOLUTE_PATH.search(cell.source), f"cell {i} source has an absolute path"
        for out in cell.get("outputs", []):
            assert out.output_type != "error", f"cell {i} has an error output"
            blob = json.dumps(out.get("text", "")) + json.dumps(out.get("data", {}).get("text/plain", ""))
            assert not ABSOLUTE_PATH.search(blob), f"cell {i} output shows an absolute path"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_outputs_are_fresh(path):
    """Outputs were regenerated (class profile) after the last change to any code cell."""
    lock = json.loads(LOCK_FILE.read_text())
    assert path.name in lock, f"{path.name} has no outputs record: run python3 course.py outputs"
    entry = lock[path.name]
    rerun = f"run python -m course_lib run-notebooks --profile class --only {path.name[:2]} --inplace"
    assert entry["code_sha256"] == code_hash(_read(path)), f"{path.name}: code changed since outputs were made; {rerun}"
    assert entry.get("configs_sha256") == configs_hash(_read(path)), (
        f"{path.name}: the configs of the chapters it uses changed since outputs were made; {rerun}")
    assert entry["profile"] == "class"
    nb = _read(path)
    executed = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert all(c.execution_count is not None for c in executed), "some code cells were never executed"


CHINESE = sorted((NOTEBOOKS[0].parent.parent / "notebooks-zh").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS + CHINESE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_checked_cells_print_only_stable_lines(path):
    passed = "通过 " if path in CHINESE else "PASS "          # the Chinese edition's library speaks Chinese
    for cell in _read(path).cells:
        if cell.cell_type == "code" and cell.source.startswith("# NBVAL_CHECK_OUTPUT"):
            text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
            lines = [line for line in text.splitlines() if line]
            assert lines and all(line.startswith(passed) for line in lines), (path.name, text)
            assert not any(o.output_type != "stream" for o in cell.outputs), "checked cells print text only"
