"""Notebook 00 shows the chapters' timings generated from outputs.lock.json, as the lock file records them now.

Notebook 00 reads the file while it runs, so after the other notebooks are regenerated, re-run 00
last: ``python -m course_lib run-notebooks --inplace --only 00_start``.
"""

import nbformat

from course_lib.tooling.notebook_runner import NOTEBOOK_DIR
from course_lib.tooling.timings import notebook_times, timings_table


def test_notebook_00_shows_the_timings_the_lock_file_records():
    nb = nbformat.read(NOTEBOOK_DIR / "00_start_here.ipynb", as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and "timings_table(" in c.source]
    assert len(cells) == 1, "notebook 00 should have one cell showing the timings table"
    shown = "".join(o.get("data", {}).get("text/markdown", "") for o in cells[0].outputs)
    table = timings_table([row for row in notebook_times() if not row.notebook.startswith("00_")])
    assert shown.startswith(table + "\n"), (
        "notebook 00's committed timings differ from notebooks/outputs.lock.json: re-run it after the other "
        f"notebooks (python -m course_lib run-notebooks --inplace --only 00_start)\nshown:\n{shown}\nnow:\n{table}")
