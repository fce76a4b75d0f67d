"""Headless execution of the course notebooks: the main job behind ``run-notebooks``.

For each notebook (in course order) it executes a copy with ``COURSE_PROFILE``
set, writes the executed ``.ipynb`` and an HTML page, and collects a summary row
(notebook, profile, device, wall time, the key metrics the notebook reported via
:func:`course_lib.notebook.report.record`, pass/fail) into ``summary.md`` and ``summary.json``.

``inplace=True`` trains every model (``$COURSE_ALWAYS_TRAIN=1``: no checkpoint left by an earlier run or a
bundle is loaded, so the committed outputs and machine times are those of a fresh run), writes the outputs
back into ``notebooks/`` and records, in
``notebooks/outputs.lock.json``, the hash of each notebook's code cells and the hash of the
configs of the chapters it imports (:func:`configs_hash`); a test compares both with the
notebooks and the library, so committed outputs cannot silently go stale.

Progress bars (``tqdm.auto`` in a kernel is an ipywidgets bar) keep, as the text fallback that
GitHub, nbviewer and static pages show, the text of their first render: ``0%| 0/N``. The runner
rewrites that text from the bar's final widget state (:func:`finish_progress_text`), so a saved
notebook's bars read as they ended: ``100%| N/N``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import os
import re
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from ..train import ALWAYS_TRAIN_ENV
from .notebook_conventions import write_paired_script

__all__ = ["NOTEBOOK_DIR", "LOCK_FILE", "notebook_paths", "code_hash", "chapters_used", "configs_hash",
           "finish_progress_text", "html_page", "run_notebooks"]

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
LOCK_FILE = NOTEBOOK_DIR / "outputs.lock.json"


def notebook_paths(only: str | None = None) -> list[Path]:
    """The course notebooks in order (``NN_name.ipynb``), optionally filtered by a substring."""
    paths = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if only:
        paths = [p for p in paths if only in p.name]
        if not paths:
            raise ValueError(f"no notebook matches {only!r}; notebooks are: "
                             f"{', '.join(p.name for p in sorted(NOTEBOOK_DIR.glob('[0-9][0-9]_*.ipynb')))}")
    return paths


def code_hash(nb) -> str:
    """SHA-256 (16 hex digits) of a notebook's code cells, in order."""
    h = hashlib.sha256()
    for cell in nb.cells:
        if cell.cell_type == "code":
            h.update(cell.source.encode())
            h.update(b"\0")
    return h.hexdigest()[:16]


_CHAPTER_IMPORT = re.compile(r"course_lib\.chapters(?:\.(\w+)|\s+import\s+\(?([\w\s,]+))")


def chapters_used(nb) -> list[str]:
    """The course chapters a notebook's code imports (``from course_lib.chapters import mlm``, ``...chapters.gan``)."""
    from ..chapters.registry import CHAPTERS

    names: set[str] = set()
    for cell in nb.cells:
        if cell.cell_type == "code":
            for module, listed in _CHAPTER_IMPORT.findall(cell.source):
                words = [module] if module else [w.split()[0] for w in listed.split(",") if w.strip()]
                names.update(w for w in words if w in CHAPTERS)
    return sorted(names)


def configs_hash(nb) -> str:
    """SHA-256 (16 hex digits) of the configs, in every profile, of the chapters the notebook imports.

    Committed outputs print these settings and the numbers they produce, so a change to a chapter's
    config makes the outputs of every notebook that uses the chapter stale, like a change to its code.
    """
    from ..chapters.registry import CHAPTERS
    from ..profiles import PROFILES, for_profile

    payload = {name: {p: dataclasses.asdict(for_profile(CHAPTERS[name].Config, p)) for p in PROFILES}
               for name in chapters_used(nb)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def _progress_text(box: dict, model) -> str | None:
    """The text of a tqdm notebook bar from its widget state, or None if ``box`` is not one.

    tqdm draws a bar as an HBox of three widgets: HTML (description and percentage), FloatProgress
    (value of max) and HTML (count, times, postfix), with spaces as U+2007 and HTML-escaped text.
    A bar closed with ``leave=False`` is hidden, so it has no text.
    """
    if box.get("model_name") != "HBoxModel":
        return None
    children = [model(ref) for ref in box.get("state", {}).get("children", [])]
    if [c.get("model_name") for c in children] != ["HTMLModel", "FloatProgressModel", "HTMLModel"]:
        return None
    if model(box["state"].get("layout")).get("state", {}).get("visibility") == "hidden":
        return ""
    from tqdm.std import Bar

    left, bar, right = (c.get("state", {}) for c in children)
    text = right.get("value", "")
    if left.get("value"):       # a bar with a total: "desc: 100%|██████████| 400/400 [...]" as tqdm prints it
        frac = bar.get("value", 0) / bar["max"] if bar.get("max") else 0.0
        text = f"{left['value']}|{format(Bar(min(max(frac, 0.0), 1.0), 10), '')}|{text}"
    return html.unescape(text).replace("\u2007", " ")


def finish_progress_text(nb) -> int:
    """Set each progress-bar output's ``text/plain`` to the bar's final state; returns how many changed.

    A widget output stores the text of the widget's first render (tqdm's ``0%| 0/N``), while the
    notebook's widget state (``metadata.widgets``, saved by nbclient) holds its last one.
    """
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})

    def model(ref) -> dict:
        return state.get(str(ref).removeprefix("IPY_MODEL_"), {})

    changed = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET_VIEW)
            text = _progress_text(model(view.get("model_id")), model) if isinstance(view, dict) else None
            if text is not None and out["data"].get("text/plain") != text:
                out["data"]["text/plain"] = text
                changed += 1
    return changed


def html_page(nb) -> str:
    """The executed notebook as a static HTML page.

    An explorer's output carries the widget view and a PNG (:func:`course_lib.notebook.viz.explore`);
    nbconvert would pick the view, which a page without a kernel can only show frozen (and only with
    the widget scripts from a CDN), so the PNG is preferred to a widget view here. Widgets without a
    picture (progress bars) keep their view.
    """
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    priority = [m for m in HTMLExporter().default_config["NbConvertBase"]["display_data_priority"]
                if m != WIDGET_VIEW]
    priority.insert(priority.index("text/plain"), WIDGET_VIEW)
    body, _ = HTMLExporter(config=Config({"NbConvertBase": {"display_data_priority": priority}})).from_notebook_node(nb)
    return body


def slowest_cells(nb, n: int = 5) -> list[dict]:
    """The ``n`` code cells that took longest (nbclient's timing metadata): index, seconds, first line."""
    from datetime import datetime
    times = []
    for i, cell in enumerate(nb.cells):
        t = cell.get("metadata", {}).get("execution", {})
        start, end = t.get("iopub.execute_input"), t.get("shell.execute_reply")
        if cell.cell_type == "code" and start and end:
            seconds = (datetime.fromisoformat(end.replace("Z", "+00:00"))
                       - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()
            first = next((line for line in cell.source.splitlines() if line and not line.startswith("#")), "")
            times.append({"cell": i, "seconds": round(seconds, 1), "code": first[:60]})
    return sorted(times, key=lambda r: -r["seconds"])[:n]


def _strip_volatile(nb) -> None:
    """Remove execution timestamps so re-running does not churn the diff."""
    for cell in nb.cells:
        cell.get("metadata", {}).pop("execution", None)


def run_notebooks(profile: str | None = None, only: str | None = None,
                  out_dir: str | os.PathLike = "artifacts/notebooks",
                  inplace: bool = False, timeout: int = 1800, paths: Iterable[Path] | None = None) -> bool:
    """Execute the notebooks (the course's, or ``paths``); returns True when all pass. See the module docstring."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    from ..profiles import resolve_profile
    from ..runtime import pick_device

    profile = resolve_profile(profile)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lock: dict[str, dict] = {}
    rows = []
    for path in (list(paths) if paths is not None else notebook_paths(only)):
        nb = nbformat.read(path, as_version=4)
        metrics_file = Path(tempfile.mkstemp(suffix=".json")[1])
        metrics_file.unlink()
        env_before = dict(os.environ)
        os.environ.update({"COURSE_PROFILE": profile, "COURSE_METRICS_FILE": str(metrics_file)})
        if inplace:    # committed outputs and their machine times come from training, never from a cached checkpoint
            os.environ[ALWAYS_TRAIN_ENV] = "1"
        t0 = time.perf_counter()
        status, error = "pass", ""
        try:
            NotebookClient(nb, timeout=timeout, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
        except (CellExecutionError, CellTimeoutError) as err:
            lines = str(err).strip().splitlines()
            status, error = "FAIL", (lines[-1] if isinstance(err, CellExecutionError) else lines[0])[:300]
        finally:
            os.environ.clear()
            os.environ.update(env_before)
        wall = time.perf_counter() - t0
        metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
        metrics_file.unlink(missing_ok=True)
        finish_progress_text(nb)
        slowest = slowest_cells(nb)
        _strip_volatile(nb)
        nbformat.write(nb, out / path.name)
        (out / path.with_suffix(".html").name).write_text(html_page(nb), encoding="utf-8")
        if inplace and status == "pass":
            nbformat.write(nb, path)
            write_paired_script(path)              # its py:percent twin (notebook_conventions), kept in step
            lock[path.name] = {"code_sha256": code_hash(nb), "configs_sha256": configs_hash(nb), "profile": profile,
                               "device": str(pick_device()), "wall_s": round(wall, 1)}
        row = {"notebook": path.name, "profile": profile, "device": str(pick_device()),
               "wall_s": round(wall, 1), "metrics": metrics, "status": status, "error": error,
               "slowest_cells": slowest}
        rows.append(row)
        print(f"{status:4s}  {path.name:28s} {wall:7.1f} s  {json.dumps(metrics)}"
              + (f"\n      {error}" if error else ""),
              flush=True)
    if inplace:   # merge with the file as it is now, so concurrent runs of other notebooks are kept
        current = json.loads(LOCK_FILE.read_text()) if LOCK_FILE.exists() else {}
        LOCK_FILE.write_text(json.dumps({**current, **lock}, indent=2, sort_keys=True) + "\n")
    (out / "summary.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = ["| notebook | profile | device | wall time (s) | key metrics | result |", "|---|---|---|---|---|---|"]
    for r in rows:
        m = ", ".join(f"{k}={v}" for k, v in r["metrics"].items()) or "-"
        lines.append(f"| {r['notebook']} | {r['profile']} | {r['device']} | {r['wall_s']} | {m} | {r['status']} |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out}/summary.md, executed notebooks and HTML pages")
    return all(r["status"] == "pass" for r in rows)
