"""The explorer is ONE output carrying both the live widget and its static PNG fallback.

A live frontend renders the widget view (and only it); static renderers show the PNG. Two separate
outputs (a PNG, then the widget) made JupyterLab show a stale figure above the live one.
"""

from __future__ import annotations

import base64

import ipywidgets
import IPython.display
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from course_lib.notebook import viz  # noqa: E402


@pytest.fixture
def shown(monkeypatch):
    """What explore() displays: a list of (objects, kwargs) per display() call."""
    calls = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: calls.append((objs, kw)))
    return calls


def _draw(calls):
    def draw(scale=1.0, label="a"):
        fig, ax = plt.subplots(figsize=(2, 1.5))
        calls.append((scale, label, fig))
        ax.plot([0, 1], [0, scale])
        ax.set(xlabel="x", ylabel="scale · x", title=label)
    return draw


def test_explorer_is_one_output_with_widget_and_png(shown):
    plt.close("all")
    drawn = []
    explorer = viz.explore(_draw(drawn), scale=ipywidgets.FloatSlider(value=1.5, min=0, max=3),
                           label=ipywidgets.Text(value="first"))
    assert len(shown) == 1, f"explore() displayed {len(shown)} outputs; one bundle expected"
    (bundle,), kwargs = shown[0]
    assert kwargs == {"raw": True}
    assert set(bundle) == {viz.WIDGET_VIEW, "image/png", "text/plain"}
    assert bundle[viz.WIDGET_VIEW]["model_id"] == explorer.widget.model_id
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG\r\n\x1a\n")
    assert bundle["text/plain"].startswith("interactive(")
    assert drawn[0][:2] == (1.5, "first")                   # the static figure: the starting values
    still_open = [plt.figure(n) for n in plt.get_fignums()]
    assert drawn[0][2] not in still_open, "left open, the inline backend would show the static figure again"
    explorer.children[0].value = 2.5                          # the live widget redraws, nothing new is displayed
    assert drawn[-1][:2] == (2.5, "first") and len(shown) == 1
    plt.close("all")
    assert explorer._ipython_display_() is None               # as a cell's last value: not shown twice


def test_explorer_without_a_figure_has_no_png(shown):
    viz.explore(lambda n: None, n=ipywidgets.IntSlider(value=2))
    (bundle,), _ = shown[0]
    assert viz.WIDGET_VIEW in bundle and "image/png" not in bundle
