"""Chapter 05: a small causal Transformer language model on the same characters (``train transformer_lm``).

``config`` (sizes; budgets shared with ``rnn_lm``), ``task`` (random windows, no carried state).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from ... import runtime
from ...flops import model_flops_per_token
from ...models.transformer import TransformerConfig, TransformerLM
from ...train import RunOptions, fit
from ..base import Chapter
from ..char_lm import LMSetup, encode_corpus, lm_summary
from .config import Config, TransformerModel
from .task import WindowLMTask, evaluate_windows

__all__ = ["Config", "TransformerModel", "WindowLMTask", "evaluate_windows", "build", "run", "CHAPTER"]


def build(cfg: Config) -> LMSetup:
    """Corpus, model (seeded by ``cfg.train.seed``), task and training settings for ``cfg``."""
    vocab, train_ids, val_ids = encode_corpus(cfg.data)
    runtime.seed_everything(cfg.train.seed)
    m = cfg.model
    model = TransformerLM(TransformerConfig(vocab_size=len(vocab), max_len=cfg.data.seq_len, d_model=m.d_model,
                                            n_heads=m.n_heads, n_layers=m.n_layers, dropout=m.dropout))
    task = WindowLMTask(train_ids, val_ids, cfg.data, cfg.train.seed)
    return LMSetup(model, task, cfg.train, vocab, train_ids, val_ids)


def run(cfg: Config, *, device: str | None = None, options: RunOptions = RunOptions()) -> dict[str, Any]:
    """Train the causal Transformer LM for ``cfg``; same ``metrics.json`` schema as ``rnn_lm``."""
    started, dev = time.perf_counter(), runtime.pick_device(device)
    s = build(cfg)
    result = fit(s.model, s.task, s.train, device=dev,
                 run=replace(options, desc=options.desc or f"transformer_lm[{cfg.profile}]"))
    return lm_summary("transformer_lm", cfg, dev, result, started, s,
                      parameters=sum(p.numel() for p in s.model.parameters()),
                      model_flops_per_token=round(model_flops_per_token(s.model, cfg.data.seq_len)))


CHAPTER = Chapter("transformer_lm", "05_rnn_lm.ipynb", Config, build, run)
