"""The toy routing task of notebook 01: reverse or sort a random sequence.

Input: T random symbols from {0..V-1}; target at position t: the input reversed
(``reverse``: y_t = x_{T-1-t}, routing by *position*) or sorted (``sort``: routing
by *content*). Every output position needs a symbol from elsewhere in the sequence,
so information must move between positions, which only attention can do here.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ...batching import map_batches, step_generator
from ...train import Task
from .config import TASKS, RoutingData

__all__ = ["make_targets", "RoutingTask"]


def make_targets(x: torch.Tensor, task: str) -> torch.Tensor:
    """x (B, T) symbols -> targets (B, T): reversed or sorted along T."""
    if x.ndim != 2:
        raise ValueError(f"x must be (B, T), got {tuple(x.shape)}")
    if task == "reverse":
        return x.flip(1)
    if task == "sort":
        return x.sort(dim=1).values
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def _sample(n: int, data: RoutingData, generator: torch.Generator) -> dict[str, torch.Tensor]:
    x = torch.randint(0, data.vocab_size, (n, data.seq_len), generator=generator)   # (n, T)
    return {"x": x, "y": make_targets(x, data.task)}


class RoutingTask(Task):
    """Fresh random sequences each step (a pure function of ``(seed, step)``); a fixed held-out set."""

    def __init__(self, data: RoutingData, seed: int = 0):
        self.data, self.seed = data, seed
        self.eval_set = _sample(data.eval_size, data, torch.Generator().manual_seed(10_000 + seed))

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        return _sample(self.data.batch_size, self.data, step_generator(self.seed, step))

    def items(self, batch: Mapping[str, Any]) -> int:
        return batch["x"].numel()

    def loss(self, model: nn.Module, batch: Mapping[str, Any]) -> torch.Tensor:
        logits = model(batch["x"])                                          # (B, T, V)
        return F.cross_entropy(logits.flatten(0, 1).float(), batch["y"].flatten())

    def evaluate(self, model: nn.Module, step: int) -> dict[str, float]:
        """Held-out accuracy per symbol, and per sequence (every symbol right)."""
        predicted = map_batches(model, lambda x: model(x).argmax(-1), self.eval_set["x"], 512)   # (N, T)
        hits = predicted == self.eval_set["y"]
        return {"accuracy": float(hits.float().mean()), "sequence_accuracy": float(hits.all(1).float().mean())}

    def signature(self) -> dict[str, Any]:
        return {"data": self.data, "seed": self.seed}
