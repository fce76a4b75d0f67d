"""The ``metrics.json`` a chapter's run writes: one schema for every chapter (see docs).

Top-level keys: chapter, profile, device, steps, seconds_budget (the time budget the schedule
planned for, or None for a step budget), stopped_early, wall_s, train_wall_s,
throughput {value, unit}, metrics (quality), baselines (the same quality measured for
the baselines), data, config (the whole nested config), checkpoint, git_commit, torch,
plus chapter-specific extras (e.g. model FLOPs per token).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any
from collections.abc import Mapping

import torch

from ..checkpoints import git_commit
from ..train import TrainResult

__all__ = ["run_summary", "rounded"]


def rounded(values: Any, digits: int = 4) -> Any:
    """``values`` with every float rounded to ``digits`` (nested dicts and lists too)."""
    if isinstance(values, float):
        return round(values, digits)
    if isinstance(values, Mapping):
        return {k: rounded(v, digits) for k, v in values.items()}
    if isinstance(values, (list, tuple)):
        return [rounded(v, digits) for v in values]
    return values


def run_summary(chapter: str, cfg: Any, device: torch.device | str, result: TrainResult, started: float, *,
                unit: str, metrics: Mapping[str, Any], baselines: Mapping[str, Any], data: Mapping[str, Any],
                **extra: Any) -> dict[str, Any]:
    """The ``metrics.json`` dict for a run that began at ``time.perf_counter() == started``."""
    return {
        "chapter": chapter,
        "profile": getattr(cfg, "profile", None),
        "device": str(device),
        "precision": result.precision,
        "steps": result.steps,
        "seconds_budget": getattr(getattr(cfg, "train", None), "seconds", None),
        "stopped_early": result.stopped_early,
        "wall_s": round(time.perf_counter() - started, 2),
        "train_wall_s": round(result.wall_s, 2),
        "throughput": {"value": round(result.items_per_s, 1), "unit": unit},
        "metrics": dict(metrics),
        "baselines": dict(baselines),
        "data": dict(data),
        **extra,
        "config": dataclasses.asdict(cfg),
        "checkpoint": str(result.checkpoint) if result.checkpoint else None,
        "git_commit": git_commit(),
        "torch": str(torch.__version__),
    }
