"""Recurrent character language models: embedding -> RNN/LSTM/GRU -> linear head.

h_t = f(x_t, h_{t-1}); logits_t = W_o h_t + b_o. The model carries its recurrent
state between calls so a training loop can run truncated backpropagation
through time (notebook 05, ``train rnn_lm``).

The recurrence always runs in float32, also under bf16/fp16 autocast: an LSTM's cell state
c_t = f_t * c_{t-1} + i_t * g_t is a running sum over hundreds of steps, and bf16 keeps 8
bits of mantissa, so an update smaller than about 1/256 of c is rounded away. Measured on
one H200 with the ``full`` recipe (3 x 512 LSTM): in bf16 the loss sat at the unigram level
(3.32 nats/char at step 300); the same recipe with a float32 recurrence reached 1.67.
The embedding and the output head still run in the autocast precision.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["CharRNNConfig", "CharRNN", "detach_state"]

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class CharRNNConfig:
    vocab_size: int
    cell: str = "lstm"          # "rnn" (tanh) | "rnn_relu" | "lstm" | "gru"
    embed_dim: int = 64
    hidden_dim: int = 256
    layers: int = 2
    dropout: float = 0.0


class CharRNN(nn.Module):
    """Character-level recurrent language model."""

    _CELLS = {"rnn": nn.RNN, "rnn_relu": functools.partial(nn.RNN, nonlinearity="relu"),
              "lstm": nn.LSTM, "gru": nn.GRU}

    def __init__(self, cfg: CharRNNConfig):
        super().__init__()
        if cfg.cell not in self._CELLS:
            raise ValueError(f"unknown cell {cfg.cell!r}; expected one of {sorted(self._CELLS)}")
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim)
        self.rnn = self._CELLS[cfg.cell](cfg.embed_dim, cfg.hidden_dim, num_layers=cfg.layers,
                                         batch_first=True, dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self.head = nn.Linear(cfg.hidden_dim, cfg.vocab_size)

    def forward(self, ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """ids (B, T) int64 -> logits (B, T, V) and the new state (each (layers, B, hidden))."""
        if ids.ndim != 2 or ids.dtype != torch.long:
            raise ValueError(f"expected ids of shape (B, T) and dtype int64, got {tuple(ids.shape)} {ids.dtype}")
        x = self.embed(ids)                   # (B, T, E)
        with torch.autocast(ids.device.type, enabled=False):   # the recurrence in float32 (module docstring)
            h, state = self.rnn(x.float(), _map_state(state, torch.Tensor.float))   # (B, T, hidden)
        return self.head(h), state            # (B, T, V)


def _map_state(state: State | None, fn) -> State | None:
    """``fn`` applied to a recurrent state: h, or (h, c) for an LSTM; None stays None."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(fn(s) for s in state)  # type: ignore[return-value]
    return fn(state)


def detach_state(state: State | None) -> State | None:
    """Cut the graph at a truncated-BPTT boundary while keeping the values."""
    return _map_state(state, torch.Tensor.detach)
