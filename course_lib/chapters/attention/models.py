"""The two models notebook 01 trains on the routing task: with attention, and without.

:class:`RoutingModel` is a small bidirectional Transformer encoder
(:class:`~course_lib.models.transformer.TransformerEncoder`) with a per-position output
head. The honest baseline (:func:`build_baseline`) is the same network with every
attention layer replaced by a :class:`PositionwiseMixer`: about the same parameter
count, it knows the position, but it cannot look at other tokens. For reversal it can
do no better than chance 1/V (except at the middle position when T is odd).
"""

from __future__ import annotations

import torch
from torch import nn

from ...models.transformer import TransformerConfig, TransformerEncoder
from .config import Config

__all__ = ["PositionwiseMixer", "RoutingModel", "build_model", "build_baseline"]


class PositionwiseMixer(nn.Module):
    """Stand-in for attention that mixes nothing across positions: out_t = MLP(x_t).

    Same call signature and (q/k/v/out-sized) parameter budget as
    :class:`~course_lib.attention.MultiHeadAttention`, so swapping it in is a fair ablation.
    """

    def __init__(self, d_model: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_model, 2 * d_model), nn.GELU(), nn.Linear(2 * d_model, d_model))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                need_weights: bool = False, *, is_causal: bool = False):
        """x (B, T, D) -> (B, T, D) [, all-zero weights (B, 1, T, T): it attends to nothing]."""
        out = self.net(x)
        if need_weights:
            return out, x.new_zeros(x.shape[0], 1, x.shape[1], x.shape[1])
        return out


class RoutingModel(nn.Module):
    """Bidirectional Transformer encoder + per-position linear head: ids (B, T) -> logits (B, T, V)."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = TransformerEncoder(cfg)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, T) int64 -> logits (B, T, V)."""
        return self.head(self.encoder(ids))


def _transformer_config(cfg: Config) -> TransformerConfig:
    return TransformerConfig(vocab_size=cfg.data.vocab_size, max_len=cfg.data.seq_len, d_model=cfg.model.d_model,
                             n_heads=cfg.model.n_heads, n_layers=cfg.model.n_layers)


def build_model(cfg: Config) -> RoutingModel:
    """The attention model for ``cfg`` (seed torch first for a reproducible init)."""
    return RoutingModel(_transformer_config(cfg))


def build_baseline(cfg: Config) -> RoutingModel:
    """The same model with every attention layer replaced by a :class:`PositionwiseMixer`."""
    model = RoutingModel(_transformer_config(cfg))
    for block in model.encoder.blocks:
        block.attn = PositionwiseMixer(cfg.model.d_model)
    return model
