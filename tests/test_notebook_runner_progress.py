"""Saved progress bars read as finished: the runner writes each bar's final state into its text fallback.

A ``tqdm.auto`` bar in a kernel is an ipywidgets HBox; its output keeps the ``text/plain`` of the first
render (``0%| 0/N``), which is what GitHub, nbviewer and static pages show.
"""

from __future__ import annotations

import json

import nbformat
import pytest

from course_lib.tooling.notebook_runner import (WIDGET_STATE, WIDGET_VIEW, finish_progress_text, notebook_paths,
                                              run_notebooks)


def _widget_outputs(nb) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if WIDGET_VIEW in o.get("data", {})]


@pytest.mark.slow
def test_runner_saves_progress_bars_as_finished(tmp_path, monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)    # the kernel must draw the widget bar
    src = tmp_path / "bars.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "from tqdm.auto import tqdm\n"
        "for _ in tqdm(range(7), desc='tiny loop'):\n    pass\n"
        "bar = tqdm(total=5, desc='hidden', leave=False)\nbar.update(5)\nbar.close()")]
    nbformat.write(nb, src)
    assert run_notebooks(profile="smoke", out_dir=tmp_path / "out", paths=[src]) is True
    done = nbformat.read(tmp_path / "out" / "bars.ipynb", as_version=4)
    shown, hidden = [o["data"]["text/plain"] for o in _widget_outputs(done)]
    assert shown.startswith("tiny loop: 100%|██████████| 7/7 ["), shown
    assert "0%" not in shown.replace("100%", "") and "&" not in shown and "\u2007" not in shown
    assert hidden == ""                                     # leave=False: tqdm hides the bar when closed
    assert json.loads((tmp_path / "out" / "summary.json").read_text())[0]["status"] == "pass"


def _bar_state(left: str, value: float, total: float, right: str, hidden: bool = False) -> dict:
    ids = ["box", "left", "bar", "right", "layout"]
    html = {"model_name": "HTMLModel"}
    return {
        "box": {"model_name": "HBoxModel", "state": {"children": [f"IPY_MODEL_{i}" for i in ids[1:4]],
                                                      "layout": "IPY_MODEL_layout"}},
        "left": {**html, "state": {"value": left}},
        "bar": {"model_name": "FloatProgressModel", "state": {"value": value, "max": total}},
        "right": {**html, "state": {"value": right}},
        "layout": {"model_name": "LayoutModel", "state": {"visibility": "hidden" if hidden else None}},
    }


def _notebook_with(state: dict, text: str):
    nb = nbformat.v4.new_notebook()
    out = nbformat.v4.new_output("display_data", data={WIDGET_VIEW: {"model_id": "box", "version_major": 2,
                                                                     "version_minor": 0}, "text/plain": text})
    nb.cells = [nbformat.v4.new_code_cell("...", outputs=[out])]
    nb.metadata["widgets"] = {WIDGET_STATE: {"state": state, "version_major": 2, "version_minor": 0}}
    return nb


def test_finish_progress_text_uses_the_final_widget_state():
    nb = _notebook_with(_bar_state("mlm\u2007(class):\u2007100%", 1200, 1200,
                                   "\u20071200/1200\u2007[01:02&lt;00:00,\u200719.3it/s,\u2007loss=2.0]"),
                        "mlm (class):   0%|          | 0/1200 [00:00<?, ?it/s]")
    assert finish_progress_text(nb) == 1
    assert nb.cells[0].outputs[0]["data"]["text/plain"] == \
        "mlm (class): 100%|██████████| 1200/1200 [01:02<00:00, 19.3it/s, loss=2.0]"
    assert finish_progress_text(nb) == 0                    # idempotent
    partial = _notebook_with(_bar_state("x:\u200740%", 4, 10, "\u20074/10"), "x:   0%| 0/10")
    finish_progress_text(partial)                           # a bar stopped early (error) shows where it stopped
    assert partial.cells[0].outputs[0]["data"]["text/plain"] == "x: 40%|████      | 4/10"


def test_other_widgets_keep_their_text():
    state = _bar_state("a", 1, 1, "b")
    state["left"]["model_name"] = "LabelModel"              # an HBox of other widgets (an explorer's controls)
    nb = _notebook_with(state, "HBox(children=(Label(value='a'), ...))")
    assert finish_progress_text(nb) == 0
    assert nb.cells[0].outputs[0]["data"]["text/plain"].startswith("HBox(")
    assert finish_progress_text(nbformat.v4.new_notebook()) == 0    # no widget state at all


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.name)
def test_committed_progress_bars_read_as_they_ended(path):
    """Outputs made by `python3 course.py outputs` (the runner) pass; outputs saved any other way are re-made."""
    nb = nbformat.read(path, as_version=4)
    stale = finish_progress_text(nb)
    assert stale == 0, (f"{path.name}: {stale} progress bars keep the text of their first render (0%): "
                        f"re-make the outputs with `python3 course.py outputs --only {path.name[:2]}`")


def test_html_page_shows_an_explorers_png_and_a_progress_bars_widget():
    """A static page has no kernel: an explorer (widget view + PNG in one output) shows its PNG."""
    from course_lib.tooling.notebook_runner import html_page

    nb = _notebook_with(_bar_state("bar:\u2007100%", 3, 3, "\u20073/3"), "bar: 100%|██████████| 3/3")
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    explorer = nbformat.v4.new_output("display_data", data={
        WIDGET_VIEW: {"model_id": "explorer", "version_major": 2, "version_minor": 0},
        "image/png": png, "text/plain": "interactive(children=(FloatSlider(value=1.0),))"})
    nb.cells.append(nbformat.v4.new_code_cell("explore(...)", outputs=[explorer]))
    nb.metadata["widgets"][WIDGET_STATE]["state"]["explorer"] = {"model_name": "VBoxModel", "state": {}}
    page = html_page(nb)
    assert f"data:image/png;base64,{png}" in page
    assert '"model_id": "explorer"' not in page and '"model_id": "box"' in page
