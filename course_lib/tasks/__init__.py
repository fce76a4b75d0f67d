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
    "attention": "course_lib.tasks.attention",            # 01: toy routing task
    "mlm": "course_lib.tasks.mlm",                        # 02: masked LM + fine-tuning
    "gan": "course_lib.tasks.gan",                        # 03: DCGAN on MNIST-5k
    "contrastive": "course_lib.tasks.contrastive",        # 04: SimCLR on MNIST-5k
    "rnn_lm": "course_lib.tasks.rnn_lm",                  # 05: char-level LSTM LM
    "transformer_lm": "course_lib.tasks.transformer_lm",  # 05: causal Transformer on the same data
}


def chapter_module(name: str) -> ModuleType:
    """The module of chapter ``name``; unknown names list the valid ones."""
    if name not in CHAPTERS:
        raise ValueError(f"unknown chapter {name!r}; expected one of: {', '.join(sorted(CHAPTERS))}")
    try:
        return importlib.import_module(CHAPTERS[name])
    except ModuleNotFoundError as err:
        if err.name != CHAPTERS[name]:
            raise
        raise ValueError(f"chapter {name!r} is not available in this version of course_lib") from err
