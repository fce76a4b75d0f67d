"""Heads on a Transformer encoder: the masked-LM head and a [CLS]-pooled classifier.

An encoder returns hidden states (B, T, D), not logits: a task needs a head.

* :class:`MaskedLM` = :class:`~course_lib.models.transformer.TransformerEncoder` + an
  MLM head (BERT's transform: Linear, GELU, LayerNorm, then a D x V decoder tied to the
  token embedding when ``cfg.tie_embeddings``; Devlin et al. 2019, §3.1 and the
  reference implementation). Given ``positions`` (B, T) bool, the head runs only at
  those positions, which saves most of the D x V work (15% of the tokens).
* :class:`SequenceClassifier` = encoder + a linear layer on the [CLS] hidden state
  (position 0; BERT §3, "the final hidden state corresponding to this token is used
  as the aggregate sequence representation"), or on the mean over real tokens.

Used by notebook 02 and ``course_lib.chapters.mlm``.
"""

from __future__ import annotations

import torch
from torch import nn

from .transformer import TransformerConfig, TransformerEncoder

__all__ = ["MLMHead", "MaskedLM", "SequenceClassifier", "pool_hidden"]


class MLMHead(nn.Module):
    """h (..., D) -> logits (..., V): LayerNorm(GELU(h W_t + b_t)) W_eᵀ + b (W_e tied if given)."""

    def __init__(self, d_model: int, vocab_size: int, tied_weight: nn.Parameter | None = None):
        super().__init__()
        self.transform = nn.Sequential(nn.Linear(d_model, d_model), nn.GELU(), nn.LayerNorm(d_model))
        self.decoder = nn.Linear(d_model, vocab_size, bias=True)
        if tied_weight is not None:
            if tied_weight.shape != (vocab_size, d_model):
                raise ValueError(f"tied weight must be (V={vocab_size}, D={d_model}), got {tuple(tied_weight.shape)}")
            self.decoder.weight = tied_weight
        else:
            nn.init.normal_(self.decoder.weight, std=0.02)
        nn.init.zeros_(self.decoder.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """h (..., D) -> logits (..., V)."""
        return self.decoder(self.transform(h))


class MaskedLM(nn.Module):
    """Bidirectional encoder + MLM head; returns logits, never a loss."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        if cfg.causal:
            raise ValueError("a masked LM reads both directions: use TransformerConfig(causal=False)")
        self.cfg = cfg
        self.encoder = TransformerEncoder(cfg)
        tied = self.encoder.tok_emb.weight if cfg.tie_embeddings else None
        self.head = MLMHead(cfg.d_model, cfg.vocab_size, tied)

    def forward(self, ids: torch.Tensor, pad_mask: torch.Tensor | None = None,
                positions: torch.Tensor | None = None) -> torch.Tensor:
        """ids (B, T) int64, pad_mask (B, T) bool (True = real) -> logits.

        positions None: logits (B, T, V) everywhere. positions (B, T) bool: logits
        (N, V) only where True, in row-major order (N = positions.sum()).
        """
        hidden = self.encoder(ids, pad_mask)                                  # (B, T, D)
        if positions is None:
            return self.head(hidden)                                          # (B, T, V)
        if positions.shape != ids.shape or positions.dtype != torch.bool:
            raise ValueError(f"positions must be bool {tuple(ids.shape)}, "
                             f"got {tuple(positions.shape)} {positions.dtype}")
        return self.head(hidden[positions])                                   # (N, D) -> (N, V)


def pool_hidden(hidden: torch.Tensor, pad_mask: torch.Tensor | None, pool: str = "cls") -> torch.Tensor:
    """hidden (B, T, D) -> (B, D): position 0 ([CLS]) or the mean over real tokens."""
    if hidden.ndim != 3:
        raise ValueError(f"hidden must be (B, T, D), got {tuple(hidden.shape)}")
    if pool == "cls":
        return hidden[:, 0]                                                   # (B, D)
    if pool == "mean":
        if pad_mask is None:
            return hidden.mean(1)
        w = pad_mask.to(hidden.dtype).unsqueeze(-1)                           # (B, T, 1)
        return (hidden * w).sum(1) / w.sum(1).clamp_min(1.0)                  # (B, D)
    raise ValueError(f"pool must be 'cls' or 'mean', got {pool!r}")


class SequenceClassifier(nn.Module):
    """Encoder + dropout + Linear(D, C) on the pooled hidden state -> class logits (B, C)."""

    def __init__(self, encoder: TransformerEncoder, n_classes: int, pool: str = "cls", dropout: float = 0.1):
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {n_classes}")
        if pool not in ("cls", "mean"):
            raise ValueError(f"pool must be 'cls' or 'mean', got {pool!r}")
        self.encoder, self.pool = encoder, pool
        self.drop = nn.Dropout(dropout)
        self.classifier = nn.Linear(encoder.cfg.d_model, n_classes)
        nn.init.normal_(self.classifier.weight, std=0.02)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, ids: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """ids (B, T) int64 starting with [CLS], pad_mask (B, T) bool -> logits (B, C)."""
        hidden = self.encoder(ids, pad_mask)                                  # (B, T, D)
        return self.classifier(self.drop(pool_hidden(hidden, pad_mask, self.pool)))
