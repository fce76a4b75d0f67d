"""Next-character prediction on random windows, for a model without a carried state (notebook 05).

Each step reads B random windows of T + 1 characters; validation reads non-overlapping
windows, so each character sees on average T/2 characters of context, where the
LSTM's carried state sees all of the past.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Mapping

import torch
from torch import nn

from ...batching import step_generator
from ...checkpoints import tensor_digest
from ...objectives.lm import lm_loss
from ...train import Task, TrainConfig
from ..char_lm import CharData, lm_metrics, require_text

__all__ = ["WindowLMTask", "evaluate_windows"]


class WindowLMTask(Task):
    """Next-character prediction on random windows; batches depend only on (seed, step)."""

    def __init__(self, train_ids: torch.Tensor, val_ids: torch.Tensor, data: CharData, seed: int = 0):
        require_text(train_ids, val_ids, data, need_train=data.seq_len + 2, need_val=data.seq_len + 1)  # one window
        self.train_ids, self.val_ids, self.data, self.seed = train_ids, val_ids, data, seed
        self.text_digest = tensor_digest(train_ids)              # the text itself, not just its file name

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        T = self.data.seq_len
        starts = torch.randint(0, len(self.train_ids) - T - 1, (self.data.batch_size,),
                               generator=step_generator(self.seed, step))
        chunk = self.train_ids[starts[:, None] + torch.arange(T + 1)].long()       # (B, T + 1)
        return {"x": chunk[:, :-1], "y": chunk[:, 1:]}

    def items(self, batch: Mapping[str, torch.Tensor]) -> int:
        return batch["x"].numel()

    def loss(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return lm_loss(model(batch["x"]), batch["y"])

    def optimizers(self, model: nn.Module, cfg: TrainConfig, device: torch.device) -> dict[str, torch.optim.Optimizer]:
        """AdamW with weight decay on matrices only (not on biases, LayerNorms or positions' vectors)."""
        decay = [p for p in model.parameters() if p.ndim >= 2]
        no_decay = [p for p in model.parameters() if p.ndim < 2]
        groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        return {"model": torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=device.type == "cuda")}

    def evaluate(self, model: nn.Module, step: int) -> dict[str, float]:
        return lm_metrics(evaluate_windows(model, self.val_ids, self.data.seq_len))

    def signature(self) -> dict[str, Any]:
        return {"data": self.data, "seed": self.seed, "text": self.text_digest}


@torch.no_grad()
def evaluate_windows(model: nn.Module, ids: torch.Tensor, seq_len: int, batch_size: int = 64) -> float:
    """Mean nats/char over non-overlapping windows of ``seq_len`` + 1 ids."""
    device = next(model.parameters()).device
    n = (len(ids) - 1) // seq_len
    windows = ids[: n * seq_len + 1].unfold(0, seq_len + 1, seq_len)           # (n, T + 1)
    total, count = 0.0, 0
    for i in range(0, n, batch_size):
        chunk = windows[i:i + batch_size].to(device).long()
        y = chunk[:, 1:]
        total += float(lm_loss(model(chunk[:, :-1]), y)) * y.numel()
        count += y.numel()
    return total / count
