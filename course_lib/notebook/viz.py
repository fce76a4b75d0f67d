"""Plots and widgets: loss curves, image grids, and interactive explorers with a static fallback.

Plot functions take data and return a matplotlib ``Figure``; they never train or
compute anything heavy. Used by every notebook.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["plot_history", "image_grid", "show_images", "heatmap", "explore", "Explorer"]


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(values) < window:
        return values
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


def plot_history(history: Mapping[str, Sequence[Mapping[str, float]]], train_key: str = "loss",
                 eval_keys: Sequence[str] = (), baselines: Mapping[str, float] | None = None,
                 smooth: int = 10, ax: plt.Axes | None = None, title: str | None = None,
                 ylabel: str = "loss", color: str = "C0", label: str | None = None) -> plt.Figure:
    """Training curve (raw and moving average, in ``color``; legend ``label``, default "train <key>"),
    evaluation points, and baseline lines."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 4))
    train = [r for r in history.get("train", []) if train_key in r]
    if train:
        steps = np.array([r["step"] for r in train])
        vals = np.array([r[train_key] for r in train])
        ax.plot(steps, vals, color=color, alpha=0.25, lw=1)
        sm = _smooth(vals, smooth)
        ax.plot(steps[len(steps) - len(sm):], sm, color=color, lw=2, label=label or f"train {train_key}")
    for i, key in enumerate(eval_keys):
        pts = [(r["step"], r[key]) for r in history.get("eval", []) if key in r]
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, "o-", color=f"C{i + 1}", label=key)
    for i, (name, value) in enumerate((baselines or {}).items()):
        ax.axhline(value, ls="--", color=f"C{i + 3}", lw=1.2, label=f"{name} {value:.3f}")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def image_grid(images: torch.Tensor, nrow: int = 10, value_range: tuple[float, float] = (0.0, 1.0)
               ) -> np.ndarray:
    """(N, 1, H, W) or (N, H, W) images -> one (rows*H, nrow*W) array with 1-pixel gaps."""
    x = images.detach().float().cpu()
    if x.ndim == 4:
        if x.shape[1] != 1:
            raise ValueError(f"expected single-channel images (N, 1, H, W), got {tuple(x.shape)}")
        x = x[:, 0]
    if x.ndim != 3:
        raise ValueError(f"expected images shaped (N, 1, H, W) or (N, H, W), got {tuple(images.shape)}")
    lo, hi = value_range
    x = ((x - lo) / (hi - lo)).clamp(0, 1).numpy()
    n, h, w = x.shape
    rows = -(-n // nrow)
    grid = np.full((rows * (h + 1) - 1, nrow * (w + 1) - 1), 0.15, dtype=np.float32)  # light-grey gaps
    for i in range(n):
        r, c = divmod(i, nrow)
        grid[r * (h + 1): r * (h + 1) + h, c * (w + 1): c * (w + 1) + w] = x[i]
    return grid


def show_images(images: torch.Tensor, nrow: int = 10, title: str | None = None,
                value_range: tuple[float, float] = (0.0, 1.0), labels: Sequence[Any] | None = None,
                ax: plt.Axes | None = None, scale: float = 0.6) -> plt.Figure:
    """Show a grid of images (dark digits on light background is matplotlib's 'gray_r')."""
    grid = image_grid(images, nrow, value_range)
    if ax is None:
        rows = -(-len(images) // nrow)
        fig, ax = plt.subplots(figsize=(max(3, nrow * scale), max(1.5, rows * scale + 0.4)))
    else:
        fig = ax.figure
    ax.imshow(grid, cmap="gray_r", vmin=0, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    if labels is not None:
        h = images.shape[-2]
        w = images.shape[-1]
        for i, lab in enumerate(labels):
            r, c = divmod(i, nrow)
            ax.text(c * (w + 1) + 1, r * (h + 1) + 4, str(lab), color="C3", fontsize=7)
    fig.tight_layout()
    return fig


def heatmap(matrix: torch.Tensor | np.ndarray, row_labels: Sequence[str] | None = None,
            col_labels: Sequence[str] | None = None, ax: plt.Axes | None = None, title: str | None = None,
            annotate: bool = True, cmap: str = "viridis", fmt: str = ".2f") -> plt.Figure:
    """A labelled heatmap of a 2-D matrix (attention weights, confusion matrices...)."""
    m = matrix.detach().float().cpu().numpy() if isinstance(matrix, torch.Tensor) else np.asarray(matrix)
    if m.ndim != 2:
        raise ValueError(f"heatmap needs a 2-D matrix, got shape {m.shape}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(0.5 * m.shape[1] + 2, 0.45 * m.shape[0] + 1.2))
    else:
        fig = ax.figure
    im = ax.imshow(m, cmap=cmap)
    if row_labels is not None:
        ax.set_yticks(range(len(row_labels)), row_labels, fontsize=8)
    if col_labels is not None:
        ax.set_xticks(range(len(col_labels)), col_labels, rotation=60, ha="right", fontsize=8)
    if annotate and m.size <= 400:
        hi = np.nanmax(m) if m.size else 0
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize=6,
                    color="black" if v > 0.6 * hi else "white")
    if title:
        ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _static_png(draw: Callable[..., None], values: Mapping[str, Any]) -> bytes | None:
    """``draw(**values)`` rendered to PNG as the inline backend would, or None if it made no figure.

    The figures ``draw`` opens are closed, so the inline backend does not show them a second time.
    """
    from IPython.core.pylabtools import print_figure

    before = set(plt.get_fignums())
    draw(**values)
    made = [n for n in plt.get_fignums() if n not in before]
    png = print_figure(plt.figure(made[0]), "png") if made else None
    for n in made:
        plt.close(n)
    return png


def explore(draw: Callable[..., None], **controls: Any) -> Any:
    """An ipywidgets explorer whose static fallback shows only where widgets cannot render.

    ``draw(**values)`` makes one figure. The explorer is displayed as ONE output whose mime bundle
    holds both the widget view and a PNG of ``draw`` at the controls' starting values: a live
    frontend (JupyterLab, Notebook, VS Code) renders the widget, which redraws as the controls
    move; a static renderer (GitHub, nbviewer, nbconvert, the course website) shows the PNG. So a
    learner never sees a stale figure beside the live one.
    ``controls`` are ipywidgets (or anything ``ipywidgets.interactive`` accepts).
    Returns an :class:`Explorer` wrapping the widget, or ``None`` if ipywidgets is unavailable
    (then the static figure is shown alone).
    """
    initial = {k: getattr(w, "value", w) for k, w in controls.items()}
    try:
        import ipywidgets
        from IPython.display import display
    except ImportError:
        draw(**initial)
        plt.show()
        print("(ipywidgets not installed: showing the static figure only; pip install ipywidgets)")
        return None
    png = _static_png(draw, initial)
    widget = ipywidgets.interactive(draw, **controls)        # draws again, into its own Output widget
    bundle = dict(widget._repr_mimebundle_())                # text/plain + the widget view
    if png is not None:
        bundle["image/png"] = base64.b64encode(png).decode("ascii")
    display(bundle, raw=True)
    return Explorer(widget)


class Explorer:
    """The explorer :func:`explore` displayed: its attributes are the widget's (``.children``,
    ``.kwargs``, ...), and as a cell's last value it is not displayed a second time."""

    def __init__(self, widget: Any):
        self.widget = widget

    def __getattr__(self, name: str) -> Any:
        return getattr(self.widget, name)

    def _ipython_display_(self) -> None:       # already on screen: show nothing more
        return None
