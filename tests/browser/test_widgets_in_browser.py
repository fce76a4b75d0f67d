"""Every notebook, run in JupyterLab in headless Chromium: widgets render and respond.

For each notebook: open it in JupyterLab (smoke profile), accept the kernel dialog,
clear the committed outputs, Run All, wait for the last cell, then

* no cell raised an error;
* every widget output (explorers, progress bars) is rendered by the widget manager
  (not "Error displaying widget", not left as the plain-text ``interactive(...)`` fallback
  that shows when the JupyterLab extension and ipywidgets do not match);
* in every cell with a slider, moving the first slider by one step (arrow key on the
  focused handle) changes the output below it (the figure's image or its text); in a cell
  with a text box and no slider, typing a new value and pressing Enter does;
* an explorer (``course_lib.notebook.viz.explore``) is one output carrying the widget and a
  static PNG, and the page shows exactly one figure in its cell, before and after the
  interaction, and that figure changes: a static fallback left beside the live widget (a stale
  figure that does not follow the controls) fails the test.

Screenshots of every widget cell before and after the interaction, one of the page,
and the browser's console log go to ``artifacts/browser/``. Run it with
``python3 course.py browser-test`` (see README, "Classroom").
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from course_lib.tooling.notebook_runner import notebook_paths

NOTEBOOKS = notebook_paths()
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "browser"
RUN_TIMEOUT_S = 1500          # one notebook, smoke profile, 2 busy cores, plus browser overhead
INTERACTION_TIMEOUT_S = 180   # a redraw after one slider step
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

_STATE_JS = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  if (!w || !w.content || !w.content.model) return null;
  const m = w.content.model, cells = [];
  for (let i = 0; i < m.cells.length; i++) {
    const c = m.cells.get(i);
    if (c.type !== 'code') { cells.push(null); continue; }
    cells.push({count: c.executionCount, state: c.executionState || null,
                empty: c.sharedModel.getSource().trim() === '',
                outputs: c.outputs.toJSON().map(o => ({type: o.output_type, mimes: Object.keys(o.data || {}),
                                                       ename: o.ename || null, evalue: o.evalue || null}))});
  }
  const k = w.sessionContext.session && w.sessionContext.session.kernel;
  return {path: w.context.path, kernel: k ? k.status : 'none', cells};
}"""

_SIGNATURE_JS = """(cell) => {
  const parts = [];
  for (const out of cell.querySelectorAll('.widget-output, .widget-interact .jp-OutputArea')) {
    for (const img of out.querySelectorAll('img')) parts.push('img:' + img.src.length + ':' + img.src.slice(-200));
    parts.push('text:' + out.innerText);
  }
  return parts.join('|');
}"""


_FIGURES_JS = """(cell) => Array.from(cell.querySelectorAll('.jp-Cell-outputArea img'))
  .filter(img => img.offsetParent !== null && img.getBoundingClientRect().height > 0)
  .map(img => img.src.length + ':' + img.src.slice(-200))"""


def _one_figure(cell, index: int, name: str, when: str) -> str:
    """The one figure visible in an explorer cell's output (a second one would be a stale fallback)."""
    figures = cell.evaluate(_FIGURES_JS)
    assert len(figures) == 1, (f"{name} cell {index}: {len(figures)} figures visible {when}; an explorer shows "
                               f"exactly one (a static fallback beside the live widget is a stale figure)")
    return figures[0]


def _open_notebook(page, lab, name: str) -> None:
    page.goto(lab.url(f"lab/tree/notebooks/{name}?reset"), wait_until="domcontentloaded", timeout=180_000)
    page.wait_for_function(
        "(name) => window.jupyterapp && window.jupyterapp.shell.currentWidget && "
        "window.jupyterapp.shell.currentWidget.context && "
        "window.jupyterapp.shell.currentWidget.context.path.endsWith(name)", arg=name, timeout=180_000)
    t0 = time.time()
    while time.time() - t0 < 180:   # JupyterLab may ask "Select Kernel" first: accept the default (python3)
        accept = page.locator(".jp-Dialog .jp-mod-accept")
        if accept.count() and accept.first.is_visible():
            accept.first.click()
        state = page.evaluate(_STATE_JS)
        if state and state["kernel"] == "idle":
            return
        time.sleep(1)
    raise AssertionError(f"{name}: the kernel did not start within 180 s (state {state and state['kernel']})")


def _run_all(page, name: str) -> dict:
    page.evaluate("() => { const app = window.jupyterapp;"
                  " return app.commands.execute('notebook:clear-all-cell-outputs').then("
                  " () => { app.commands.execute('notebook:run-all-cells'); return true; }); }")
    t0 = time.time()
    while True:
        time.sleep(3)
        state = page.evaluate(_STATE_JS)
        code = [c for c in state["cells"] if c and not c["empty"]]
        errors = [(i, o) for i, c in enumerate(state["cells"]) if c for o in c["outputs"] if o["type"] == "error"]
        done = all(c["count"] is not None and c["state"] != "running" for c in code)
        if errors and state["kernel"] == "idle":
            i, o = errors[0]
            raise AssertionError(f"{name}: cell {i} raised {o['ename']}: {o['evalue']}")
        if done and state["kernel"] == "idle":
            time.sleep(2)   # let the last widget views attach
            return page.evaluate(_STATE_JS)
        if time.time() - t0 > RUN_TIMEOUT_S:
            pending = [i for i, c in enumerate(state["cells"]) if c and not c["empty"] and c["count"] is None]
            raise AssertionError(f"{name}: not finished after {RUN_TIMEOUT_S} s; cells still pending: {pending[:10]}")


def _check_widget_cell(cell, index: int, outputs: list[dict], name: str) -> int:
    """Each widget output of the cell is a rendered widget view; returns how many."""
    children = cell.locator(".jp-Cell-outputArea > .jp-OutputArea-child")
    assert children.count() == len(outputs), (
        f"{name} cell {index}: {len(outputs)} outputs in the model but {children.count()} in the page")
    n = 0
    for k, out in enumerate(outputs):
        if WIDGET_MIME not in out["mimes"]:
            continue
        child = children.nth(k)
        child.locator(".jupyter-widgets").first.wait_for(state="attached", timeout=60_000)
        text = child.inner_text()
        assert "Error displaying widget" not in text and "Loading widget" not in text, (
            f"{name} cell {index}: widget did not render: {text[:200]!r}")
        assert not re.match(r"\s*(interactive|HBox|VBox|IntSlider|FloatSlider)\(", text), (
            f"{name} cell {index}: the widget shows as plain text {text[:80]!r}: the JupyterLab widget "
            f"extension (jupyterlab_widgets) does not match ipywidgets")
        n += 1
    return n


def _wait_for_change(page, cell, before: str) -> str:
    """The cell's output signature once it differs from ``before`` (or the last one seen at the timeout)."""
    t0 = time.time()
    after = before
    while time.time() - t0 < INTERACTION_TIMEOUT_S:
        page.wait_for_timeout(1000)
        after = cell.evaluate(_SIGNATURE_JS)
        if after and after != before:
            break
    return after


def _move_slider(page, cell, index: int, name: str) -> dict:
    """Move the cell's first slider one step; wait for the output under it to change."""
    slider = cell.locator(".widget-slider").first
    handle = slider.locator(".noUi-handle").first
    readout = slider.locator(".widget-readout").first
    before_value, before = readout.inner_text(), cell.evaluate(_SIGNATURE_JS)
    assert before, f"{name} cell {index}: the explorer shows no output to compare"
    handle.scroll_into_view_if_needed()
    handle.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_timeout(500)
    if readout.inner_text() == before_value:       # at the top of its range: go the other way
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("ArrowLeft")
    after = _wait_for_change(page, cell, before)
    after_value = readout.inner_text()
    assert after_value != before_value, f"{name} cell {index}: the slider did not move ({before_value})"
    assert after != before, (f"{name} cell {index}: moving the slider {before_value} -> {after_value} "
                             f"did not change the output within {INTERACTION_TIMEOUT_S} s")
    return {"cell": index, "slider": f"{before_value} -> {after_value}", "output_changed": True}


def _edit_text(page, cell, index: int, name: str) -> dict:
    """Type a new value into the cell's first text box and press Enter; wait for the output to change."""
    box = cell.locator(".widget-text input").first
    before_value, before = box.input_value(), cell.evaluate(_SIGNATURE_JS)
    assert before, f"{name} cell {index}: the explorer shows no output to compare"
    new_value = "to be or not to [MASK]" if "[MASK]" in before_value else before_value + " the"
    box.scroll_into_view_if_needed()
    box.fill(new_value)
    box.press("Enter")              # continuous_update=False boxes send their value on Enter
    after = _wait_for_change(page, cell, before)
    assert after != before, (f"{name} cell {index}: typing {new_value!r} did not change the output "
                             f"within {INTERACTION_TIMEOUT_S} s")
    return {"cell": index, "text": f"{before_value!r} -> {new_value!r}", "output_changed": True}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_widgets_render_and_respond(path: Path, lab, browser):
    name, stem = path.name, path.stem
    out = ARTIFACTS
    out.mkdir(parents=True, exist_ok=True)
    page = browser.new_page()
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda err: console.append(f"pageerror: {err}"))
    report = {"notebook": name, "widget_outputs": 0, "interactions": []}
    t0 = time.time()
    try:
        _open_notebook(page, lab, name)
        state = _run_all(page, name)
        report["run_s"] = round(time.time() - t0, 1)
        page.screenshot(path=str(out / f"{stem}.png"))
        cells = page.locator(".jp-Notebook .jp-Cell")
        assert cells.count() == len(state["cells"]), "cells in the page do not match the notebook"
        for i, c in enumerate(state["cells"]):
            if not c or not any(WIDGET_MIME in o["mimes"] for o in c["outputs"]):
                continue
            cell = cells.nth(i)
            cell.scroll_into_view_if_needed()
            report["widget_outputs"] += _check_widget_cell(cell, i, c["outputs"], name)
            explorer = cell.locator(".widget-interact").count() > 0
            if explorer:
                first = _one_figure(cell, i, name, "after the run")
                views = [o for o in c["outputs"] if WIDGET_MIME in o["mimes"]]
                assert len(views) == 1 and "image/png" in views[0]["mimes"], (
                    f"{name} cell {i}: an explorer is one output with the widget and its static PNG; "
                    f"outputs here: {[o['mimes'] for o in c['outputs']]}")
            if cell.locator(".widget-slider .noUi-handle").count():
                cell.screenshot(path=str(out / f"{stem}_cell{i:02d}_before.png"))
                report["interactions"].append(_move_slider(page, cell, i, name))
                cell.screenshot(path=str(out / f"{stem}_cell{i:02d}_after.png"))
            elif cell.locator(".widget-text input").count():
                cell.screenshot(path=str(out / f"{stem}_cell{i:02d}_before.png"))
                report["interactions"].append(_edit_text(page, cell, i, name))
                cell.screenshot(path=str(out / f"{stem}_cell{i:02d}_after.png"))
            else:
                cell.screenshot(path=str(out / f"{stem}_cell{i:02d}.png"))
            if explorer and report["interactions"] and report["interactions"][-1]["cell"] == i:
                assert _one_figure(cell, i, name, "after the interaction") != first, (
                    f"{name} cell {i}: the one visible figure did not change with the controls")
                report["interactions"][-1]["one_figure_changed"] = True
        widget_errors = [m for m in console if m.startswith(("error", "pageerror")) and re.search(r"[Ww]idget", m)]
        assert not widget_errors, f"{name}: widget errors in the browser console: {widget_errors[:5]}"
        report["status"] = "pass"
    except BaseException as err:
        report["status"] = f"FAIL: {err}"[:500]
        page.screenshot(path=str(out / f"{stem}_failure.png"))
        raise
    finally:
        report["wall_s"] = round(time.time() - t0, 1)
        (out / f"{stem}.console.log").write_text("\n".join(console) + "\n")
        (out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
        try:
            page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
        except Exception:  # the page may be gone after a failure; the server stop ends the kernel anyway
            pass
        page.close()
