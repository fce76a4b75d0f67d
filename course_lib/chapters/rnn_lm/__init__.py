"""Chapter 05: a character-level recurrent language model on Shakespeare (``train rnn_lm``).

``config`` (sizes and budgets), ``task`` (truncated BPTT with a carried state); the corpus,
budgets and metrics are shared with ``transformer_lm`` (:mod:`course_lib.chapters.char_lm`).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from ... import runtime
from ...models.rnn import CharRNN, CharRNNConfig
from ...train import RunOptions, fit
from ..base import Chapter
from ..char_lm import LMSetup, encode_corpus, lm_summary
from .config import Config, RNNModel
from .task import CharLMTask, evaluate_nll, stream_layout

__all__ = ["Config", "RNNModel", "CharLMTask", "evaluate_nll", "stream_layout", "build", "run", "CHAPTER"]


def build(cfg: Config) -> LMSetup:
    """Corpus, model (seeded by ``cfg.train.seed``), task and training settings for ``cfg``."""
    vocab, train_ids, val_ids = encode_corpus(cfg.data)
    runtime.seed_everything(cfg.train.seed)
    m = cfg.model
    model = CharRNN(CharRNNConfig(len(vocab), m.cell, m.embed_dim, m.hidden_dim, m.layers, m.dropout))
    return LMSetup(model, CharLMTask(train_ids, val_ids, cfg.data), cfg.train, vocab, train_ids, val_ids)


def run(cfg: Config, *, device: str | None = None, options: RunOptions = RunOptions()) -> dict[str, Any]:
    """Train the character LSTM for ``cfg``; return the ``metrics.json`` dict."""
    started, dev = time.perf_counter(), runtime.pick_device(device)
    s = build(cfg)
    result = fit(s.model, s.task, s.train, device=dev,
                 run=replace(options, desc=options.desc or f"rnn_lm[{cfg.profile}]"))
    return lm_summary("rnn_lm", cfg, dev, result, started, s)


CHAPTER = Chapter("rnn_lm", "05_rnn_lm.ipynb", Config, build, run)
