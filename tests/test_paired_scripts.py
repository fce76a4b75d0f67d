"""Each notebook has a reviewable py:percent twin beside it (jupytext), and the twin is never stale."""

from __future__ import annotations

import nbformat
import pytest

from course_lib.tooling import notebook_conventions as NC
from course_lib.tooling.notebook_runner import notebook_paths


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.name)
def test_every_notebook_has_an_up_to_date_percent_twin(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata.get("jupytext", {}).get("formats") == NC.PAIRED_FORMATS, f"{path.name} is not paired"
    twin = path.with_suffix(".py")
    assert twin.exists(), f"{twin.name} is missing: python -m course_lib.tooling.notebook_conventions --paired {path}"
    assert twin.read_text(encoding="utf-8") == NC.percent_script(nb), (
        f"{twin.name} is stale (its notebook changed): python -m course_lib.tooling.notebook_conventions "
        f"--paired notebooks/{path.name}, or jupytext --sync")


def test_a_changed_cell_makes_the_twin_stale_and_rewriting_fixes_it(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# T"), nbformat.v4.new_code_cell("x = 1")])
    path = tmp_path / "t.ipynb"
    nbformat.write(nb, path)
    assert NC.write_paired_script(path) is True and NC.write_paired_script(path) is False
    assert "# %%\nx = 1" in path.with_suffix(".py").read_text()
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].source = "x = 2"
    nbformat.write(nb, path)
    assert path.with_suffix(".py").read_text() != NC.percent_script(nbformat.read(path, as_version=4))
    assert NC.write_paired_script(path) is True and "x = 2" in path.with_suffix(".py").read_text()
