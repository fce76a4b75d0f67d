"""Chapter 01: learning to attend on a toy routing problem (``train attention``, notebook 01).

A bidirectional Transformer encoder must reverse (or sort) a random sequence, which needs
information routed between positions (Vaswani et al. 2017, "Attention Is All You Need").
``config`` (sizes and budgets), ``task`` (the data and accuracy), ``models`` (the attention
model and the no-attention baseline). :func:`run` trains both with the same settings and
reports them next to chance 1/V.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ... import runtime
from ...train import RunOptions, TrainSetup, fit
from ..base import Chapter
from ..summary import rounded, run_summary
from .config import Config, RoutingData, RoutingModelConfig
from .models import PositionwiseMixer, RoutingModel, build_baseline, build_model
from .task import RoutingTask, make_targets

__all__ = ["Config", "RoutingData", "RoutingModelConfig", "make_targets", "RoutingTask", "RoutingModel",
           "PositionwiseMixer", "build_model", "build_baseline", "build", "build_no_attention", "run", "CHAPTER"]


def build(cfg: Config) -> TrainSetup:
    """The attention model (seeded by ``cfg.train.seed``), its task and training settings."""
    runtime.seed_everything(cfg.train.seed)
    return TrainSetup(build_model(cfg), RoutingTask(cfg.data, cfg.train.seed), cfg.train)


def build_no_attention(cfg: Config) -> TrainSetup:
    """The no-attention baseline (from the same seed), trained on the same task with the same settings."""
    runtime.seed_everything(cfg.train.seed)
    return TrainSetup(build_baseline(cfg), RoutingTask(cfg.data, cfg.train.seed), cfg.train)


def run(cfg: Config, *, device: str | None = None, options: RunOptions = RunOptions()) -> dict[str, Any]:
    """Train the attention model (in ``out_dir``) and the no-attention baseline (in ``out_dir/baseline``)."""
    started, dev = time.perf_counter(), runtime.pick_device(device)
    s = build(cfg)
    result = fit(s.model, s.task, s.train, device=dev, run=replace(options, desc=f"attention[{cfg.profile}]"))
    b = build_no_attention(cfg)
    baseline = b.model
    base_folder = Path(options.out_dir) / "baseline" if options.out_dir is not None else None
    base = fit(baseline, b.task, b.train, device=dev,
               run=replace(options, out_dir=base_folder, desc=f"no-attention[{cfg.profile}]"))
    summary = run_summary(
        "attention", cfg, dev, result, started, unit="tokens/s", metrics=rounded(result.final),
        baselines={"no_attention_accuracy": round(base.final["accuracy"], 4),
                   "no_attention_sequence_accuracy": round(base.final["sequence_accuracy"], 4),
                   "chance_accuracy": round(1.0 / cfg.data.vocab_size, 4)},
        data={"task": cfg.data.task, "vocab_size": cfg.data.vocab_size, "seq_len": cfg.data.seq_len,
              "eval_sequences": cfg.data.eval_size},
        parameters={"model": sum(p.numel() for p in s.model.parameters()),
                    "baseline": sum(p.numel() for p in baseline.parameters())})
    summary["stopped_early"] = result.stopped_early or base.stopped_early
    return summary


CHAPTER = Chapter("attention", "01_attention.ipynb", Config, build, run,
                  also_trains=lambda cfg: {"baseline": build_no_attention(cfg)})
