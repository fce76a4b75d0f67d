"""Chapters runnable from the command line: ``python -m course_lib train CHAPTER``.

Each chapter module defines a frozen ``Config`` dataclass (with ``PROFILES``) and
``run(cfg, device=None, out_dir=None, resume=False, progress=True, max_seconds=None)``
which trains through :func:`course_lib.train.fit` and returns the metrics dict that
the CLI writes to ``metrics.json``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["CHAPTERS", "chapter_module"]

CHAPTERS: dict[str, str] = {
    "rnn_lm": "course_lib.tasks.rnn_lm",
}


def chapter_module(name: str) -> ModuleType:
    """The module of chapter ``name``; unknown names list the valid ones."""
    if name not in CHAPTERS:
        raise ValueError(f"unknown chapter {name!r}; expected one of: {', '.join(sorted(CHAPTERS))}")
    return importlib.import_module(CHAPTERS[name])
