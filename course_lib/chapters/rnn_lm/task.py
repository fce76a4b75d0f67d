"""Truncated backpropagation through time over parallel text streams (notebook 05).

The training text is laid out as B parallel streams (B, L); step s reads the s-th
window of T characters from every stream, so row b of one batch continues row b of
the previous batch and the hidden state is carried across batches, detached:
gradients stop at the window boundary.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Mapping

import torch
from torch import nn

from ...checkpoints import tensor_digest
from ...models.rnn import detach_state
from ...objectives.lm import lm_loss
from ...train import Task
from ..char_lm import CharData, lm_metrics, require_text

__all__ = ["stream_layout", "CharLMTask", "evaluate_nll"]


def stream_layout(ids: torch.Tensor, streams: int) -> torch.Tensor:
    """(N,) ids -> (streams, N // streams): row b is the b-th contiguous slice of the text."""
    length = len(ids) // streams
    if length < 2:
        raise ValueError(f"{len(ids)} ids are too few for {streams} streams")
    return ids[: streams * length].view(streams, length)


class CharLMTask(Task):
    """Truncated BPTT over stream windows, with the hidden state carried and detached."""

    def __init__(self, train_ids: torch.Tensor, val_ids: torch.Tensor, data: CharData, eval_streams: int = 16):
        # one window of T + 1 characters in each of B training streams; two characters in each eval stream
        require_text(train_ids, val_ids, data, need_train=data.batch_size * (data.seq_len + 1),
                     need_val=2 * eval_streams)
        self.data = data
        self.streams = stream_layout(train_ids, data.batch_size)                 # (B, L)
        self.windows = (self.streams.shape[1] - 1) // data.seq_len
        self.val_ids, self.eval_streams = val_ids, eval_streams
        self.text_digest = tensor_digest(train_ids)              # the text itself, not just its file name
        self.state: Any = None

    def batch(self, step: int) -> dict[str, Any]:
        w = step % self.windows
        start = w * self.data.seq_len
        chunk = self.streams[:, start: start + self.data.seq_len + 1]            # (B, T + 1)
        chunk = chunk.long()                                                     # compact ids -> int64
        return {"x": chunk[:, :-1], "y": chunk[:, 1:], "reset": w == 0}

    def items(self, batch: Mapping[str, Any]) -> int:
        return batch["x"].numel()

    def loss(self, model: nn.Module, batch: Mapping[str, Any]) -> torch.Tensor:
        state = None if batch["reset"] else self.state
        logits, state = model(batch["x"], state)                                 # (B, T, V)
        self.state = detach_state(state)
        return lm_loss(logits, batch["y"])

    def evaluate(self, model: nn.Module, step: int) -> dict[str, float]:
        return lm_metrics(evaluate_nll(model, self.val_ids, self.data.seq_len, self.eval_streams))

    def signature(self) -> dict[str, Any]:
        return {"data": self.data, "eval_streams": self.eval_streams, "text": self.text_digest}

    def state_dict(self) -> dict[str, Any]:
        return {"state": self.state}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.state = state["state"]


@torch.no_grad()
def evaluate_nll(model: nn.Module, ids: torch.Tensor, seq_len: int, streams: int = 16,
                 carry_state: bool = True) -> float:
    """Mean nats/char of ``model`` on ``ids``, read as ``streams`` streams of ``seq_len`` windows.

    The state is carried from window to window, or reset at each window when ``carry_state=False``.
    """
    device = next(model.parameters()).device
    data = stream_layout(ids, streams).to(device).long()                        # (S, L)
    total, count, state = 0.0, 0, None
    for start in range(0, data.shape[1] - 1, seq_len):
        chunk = data[:, start: start + seq_len + 1]
        logits, state = model(chunk[:, :-1], state if carry_state else None)
        total += float(lm_loss(logits, chunk[:, 1:])) * chunk[:, 1:].numel()
        count += chunk[:, 1:].numel()
    return total / count
