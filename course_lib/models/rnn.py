"""Recurrent character language models: embedding -> RNN/LSTM/GRU -> linear head.

h_t = f(x_t, h_{t-1}); logits_t = W_o h_t + b_o. The model carries its recurrent
state between calls so a training loop can run truncated backpropagation
through time (notebook 05, ``train rnn_lm``).
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
        h, state = self.rnn(x, state)         # (B, T, hidden)
        return self.head(h), state            # (B, T, V)


def detach_state(state: State | None) -> State | None:
    """Cut the graph at a truncated-BPTT boundary while keeping the values."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)  # type: ignore[return-value]
    return state.detach()
