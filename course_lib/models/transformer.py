"""A small pre-LN Transformer: blocks, an encoder, and a causal language model.

Block (Vaswani et al. 2017 with the pre-LayerNorm arrangement of Xiong et al. 2020,
"On Layer Normalization in the Transformer Architecture"):

    x = x + MHA(LN(x));   x = x + W_2 GELU(W_1 LN(x))

The encoder adds learned positions to token embeddings, runs the blocks and a final
LayerNorm. Attention goes through the SDPA fast path (:func:`course_lib.attention.attend`);
``attention_maps`` re-runs it through the from-scratch path to return the weights.
Token ids are range-checked (a readable ``ValueError``) only when they are on the CPU and
not under ``torch.compile``: the check reads the ids back to Python, which would stall an
accelerator and break a compiled graph on every forward pass.

Used by notebooks 01 (toy routing task), 02 (masked LM, bidirectional) and
05 (causal Transformer LM).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from ..attention import LearnedPositions, MultiHeadAttention, causal_mask

__all__ = ["TransformerConfig", "TransformerBlock", "TransformerEncoder", "TransformerLM"]


@dataclass(frozen=True)
class TransformerConfig:
    """Sizes of a Transformer; ``d_ff=None`` means 4 * d_model."""

    vocab_size: int
    max_len: int
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int | None = None
    dropout: float = 0.0
    causal: bool = False
    tie_embeddings: bool = True

    def __post_init__(self) -> None:
        if self.vocab_size < 1 or self.max_len < 1 or self.n_layers < 0:
            raise ValueError(f"vocab_size and max_len must be >= 1 and n_layers >= 0, got {self}")
        if self.d_model < 1 or self.n_heads < 1 or self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be a positive multiple of n_heads={self.n_heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def ff_dim(self) -> int:
        """Width of the MLP's hidden layer."""
        return self.d_ff if self.d_ff is not None else 4 * self.d_model


def _init_weights(module: nn.Module) -> None:
    """GPT-2 style: N(0, 0.02) weights, zero biases, unit LayerNorms."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class TransformerBlock(nn.Module):
    """Pre-LN block: x + attn(LN(x)), then x + MLP(LN(x)) with GELU."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = MultiHeadAttention(cfg.d_model, cfg.n_heads, dropout=cfg.dropout)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, cfg.ff_dim), nn.GELU(),
                                 nn.Linear(cfg.ff_dim, cfg.d_model), nn.Dropout(cfg.dropout))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, need_weights: bool = False,
                *, is_causal: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, D), mask broadcastable to (B, H, T, T) -> x (B, T, D) [, weights (B, H, T, T)]."""
        a = self.attn(self.ln1(x), mask=mask, need_weights=need_weights, is_causal=is_causal)
        a, weights = a if need_weights else (a, None)
        x = x + self.drop(a)
        x = x + self.mlp(self.ln2(x))
        return (x, weights) if need_weights else x


class TransformerEncoder(nn.Module):
    """Token embedding + learned positions + blocks + final LayerNorm (causal when ``cfg.causal``)."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = LearnedPositions(cfg.max_len, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(TransformerBlock(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.apply(_init_weights)

    def _mask(self, ids: torch.Tensor, pad_mask: torch.Tensor | None) -> tuple[torch.Tensor | None, bool]:
        """Validate inputs; return (mask broadcastable to (B, H, T, T) or None, use is_causal)."""
        if ids.ndim != 2 or ids.dtype != torch.long:
            raise ValueError(f"ids must be (B, T) int64, got {tuple(ids.shape)} {ids.dtype}")
        B, T = ids.shape
        if T > self.cfg.max_len:
            raise ValueError(f"sequence length {T} exceeds max_len={self.cfg.max_len}")
        self._check_id_range(ids)
        if pad_mask is None:
            return None, self.cfg.causal                         # fused causal kernel when possible
        if pad_mask.shape != (B, T) or pad_mask.dtype != torch.bool:
            raise ValueError(f"pad_mask must be bool (B, T) = {(B, T)}, True = real token; got "
                             f"{tuple(pad_mask.shape)} {pad_mask.dtype}")
        mask = pad_mask[:, None, None, :]                        # (B, 1, 1, T) keys that are real
        if self.cfg.causal:
            mask = mask & causal_mask(T, ids.device)             # (B, 1, T, T)
        return mask, False

    def _check_id_range(self, ids: torch.Tensor) -> None:
        """A readable error for out-of-range ids, for CPU inputs outside ``torch.compile`` only.

        Reading ``ids.min()`` / ``ids.max()`` back to Python waits for the device and breaks a
        compiled graph, so on an accelerator (or while compiling) the embedding lookup reports a
        bad id instead (a device-side assert on CUDA).
        """
        if ids.device.type != "cpu" or torch.compiler.is_compiling() or not ids.numel():
            return
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= self.cfg.vocab_size:
            raise ValueError(f"token ids must be in [0, {self.cfg.vocab_size}), got range [{lo}, {hi}]")

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.drop(self.pos(self.tok_emb(ids)))            # (B, T, D)

    def forward(self, ids: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """ids (B, T) int64, pad_mask (B, T) bool (True = real token) or None -> hidden (B, T, D)."""
        mask, is_causal = self._mask(ids, pad_mask)
        x = self._embed(ids)
        for block in self.blocks:
            x = block(x, mask, is_causal=is_causal)
        return self.ln_f(x)

    @torch.no_grad()
    def attention_maps(self, ids: torch.Tensor, pad_mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        """One (B, H, T, T) weight tensor per layer (from-scratch path); rows are queries."""
        mask, is_causal = self._mask(ids, pad_mask)
        x, maps = self._embed(ids), []
        for block in self.blocks:
            x, w = block(x, mask, need_weights=True, is_causal=is_causal)
            maps.append(w)
        return maps


class TransformerLM(nn.Module):
    """Causal Transformer language model: encoder (always causal) + LM head (tied when configured)."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = dataclasses.replace(cfg, causal=True)         # a language model may not look ahead
        self.encoder = TransformerEncoder(self.cfg)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.head.weight = self.encoder.tok_emb.weight       # Press & Wolf 2017
        else:
            nn.init.normal_(self.head.weight, std=0.02)

    def forward(self, ids: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """ids (B, T) int64 -> logits (B, T, V); position t sees ids[:, :t+1] only."""
        return self.head(self.encoder(ids, pad_mask))
