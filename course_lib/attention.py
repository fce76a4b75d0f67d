"""Attention: scaled dot-product attention from scratch and fast, masks, multi-head, positions.

    Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V        (Vaswani et al., 2017, "Attention Is All
                                                        You Need", §3.2.1, eq. 1)

Every query row of Q is compared with every key row of K by a dot product; the
softmax over the *keys* turns each query's scores into weights that sum to 1; the
output is that weighted average of the value rows. Multi-head attention (§3.2.2)
runs H such attentions on D/H-wide slices of learned projections and mixes them
with an output projection. Positions enter only through positional encodings
(§3.5): attention itself is permutation-equivariant.

:func:`scaled_dot_product_attention` is the readable reference (it also returns
the weights); :func:`attend` is the same computation through
``torch.nn.functional.scaled_dot_product_attention`` (fused kernels) and is what
the models use. Tests and notebook 01 check that they agree.

Masks are boolean with **True = may attend**, broadcastable to (B, H, Tq, Tk).
A query row whose keys are all masked gets all-zero weights and an all-zero
output (never NaN), in both paths.

Used by notebooks 01 (attention), 02 (masked LM) and 05 (Transformer LM).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["scaled_dot_product_attention", "attend", "causal_mask", "padding_mask", "split_heads",
           "merge_heads", "MultiHeadAttention", "sinusoidal_positions", "LearnedPositions"]


def _check_finite(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    """NaN/inf inputs are an error in both paths: how a kernel spreads a NaN through masked keys differs."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} must be finite, got NaN or inf values (check the layer that produced it)")


def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
        if t.ndim not in (3, 4):
            raise ValueError(f"{name} must be (B, H, T, d) or (B, T, d), got shape {tuple(t.shape)}")
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"q, k, v must share a dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if not (q.ndim == k.ndim == v.ndim):
        raise ValueError(f"q, k, v must have the same number of dims, got shapes "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must have the same last dim d_k, got q {tuple(q.shape)} and k {tuple(k.shape)}")
    if k.shape[-2] != v.shape[-2] or k.shape[:-2] != v.shape[:-2]:
        raise ValueError(f"k (..., Tk, d_k) and v (..., Tk, d_v) must match except in the last dim, got "
                         f"k {tuple(k.shape)} and v {tuple(v.shape)}")
    if q.shape[:-2] != k.shape[:-2]:
        raise ValueError(f"q and k must share the leading (batch, head) dims, got q {tuple(q.shape)} and "
                         f"k {tuple(k.shape)}")
    if mask is not None:
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise ValueError(f"mask must be a bool tensor (True = may attend), got "
                             f"{getattr(mask, 'dtype', type(mask).__name__)}")
        if mask.ndim < 2:
            raise ValueError(f"mask must have at least 2 dims (.., Tq, Tk), got shape {tuple(mask.shape)}; a mask "
                             f"over keys only is mask[None, :] (or padding_mask(ids, pad_id) for token ids)")
        target = (*q.shape[:-1], k.shape[-2])                   # (B, H, Tq, Tk)
        try:
            torch.broadcast_shapes(mask.shape, target)
        except RuntimeError:
            raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to the score shape "
                             f"{target} (..., Tq, Tk)") from None
        if mask.ndim > len(target):
            raise ValueError(f"mask has {mask.ndim} dims; scores have only {len(target)}: {target}")


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None, scale: float | None = None
                                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q kᵀ · scale) v, from scratch; returns (out, weights).

    q (B, H, Tq, d_k) or (B, Tq, d_k); k (.., Tk, d_k); v (.., Tk, d_v).
    mask: bool, True = may attend, broadcastable to (.., Tq, Tk).
    scale: default 1/√d_k. Returns out (.., Tq, d_v) and weights (.., Tq, Tk);
    each weights row sums to 1, or is all zero if its keys are all masked.
    """
    _check_qkv(q, k, v, mask)
    _check_finite(q, k, v)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    scores = q @ k.transpose(-2, -1) * scale                     # (.., Tq, Tk)
    if mask is not None:
        # the most negative finite number, not -inf: a fully-masked row stays finite (uniform),
        # and its gradient stays finite; the second masked_fill then zeroes that row
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = scores.softmax(dim=-1)                             # over keys: each query's row sums to 1
    if mask is not None:
        weights = weights.masked_fill(~mask, 0.0)
    return weights @ v, weights                                  # (.., Tq, d_v), (.., Tq, Tk)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
           dropout_p: float = 0.0, *, is_causal: bool = False, scale: float | None = None,
           check_finite: bool = True) -> torch.Tensor:
    """The fast path: ``F.scaled_dot_product_attention`` with this module's mask semantics.

    Shapes and mask as :func:`scaled_dot_product_attention`; returns out (.., Tq, d_v).
    ``is_causal=True`` (with ``mask=None``) lets fused kernels skip the masked half.
    Apply ``dropout_p`` only in training (the caller decides). NaN/inf inputs raise, as in the
    reference; layers pass ``check_finite=False`` (the training loop checks the loss instead,
    and the check would cost a device synchronisation per call on a GPU).
    """
    _check_qkv(q, k, v, mask)
    if check_finite:
        _check_finite(q, k, v)
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p}")
    if is_causal and mask is not None:
        raise ValueError("pass either is_causal=True or a mask (combine them with causal_mask(T) & mask)")
    empty_rows = None
    if mask is not None:
        empty_rows = ~mask.any(dim=-1, keepdim=True)             # (.., Tq, 1) rows with no key allowed
        mask = mask | empty_rows                                 # let them attend anywhere (finite) ...
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p,
                                         is_causal=is_causal, scale=scale)
    if empty_rows is not None:
        out = out.masked_fill(empty_rows, 0.0)                   # ... then zero them, as the reference does
    return out


def causal_mask(T: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(T, T) bool lower-triangular mask: query t may attend to keys 0..t."""
    if isinstance(T, (bool, float)) or not T >= 1:
        raise ValueError(f"T must be an integer >= 1 (the sequence length), got {T!r}")
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()


def padding_mask(ids: torch.Tensor, pad_id: int) -> torch.Tensor:
    """ids (B, T) -> (B, 1, 1, T) bool: True where the key is a real token (not ``pad_id``)."""
    if ids.ndim != 2 or ids.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"ids must be an integer tensor (B, T), got {tuple(ids.shape)} {ids.dtype}")
    return (ids != pad_id)[:, None, None, :]                     # (B, 1, 1, T)


def split_heads(x: torch.Tensor, H: int) -> torch.Tensor:
    """(B, T, D) -> (B, H, T, D/H): head h gets features h·D/H ... (h+1)·D/H − 1."""
    if x.ndim != 3:
        raise ValueError(f"split_heads expects (B, T, D), got shape {tuple(x.shape)}")
    B, T, D = x.shape
    if H < 1 or D % H:
        raise ValueError(f"D={D} must be divisible by the number of heads H={H}")
    return x.view(B, T, H, D // H).transpose(1, 2)               # (B, T, H, D/H) -> (B, H, T, D/H)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, d) -> (B, T, H·d): the inverse of :func:`split_heads`."""
    if x.ndim != 4:
        raise ValueError(f"merge_heads expects (B, H, T, d), got shape {tuple(x.shape)}")
    B, H, T, d = x.shape
    return x.transpose(1, 2).reshape(B, T, H * d)                # (B, T, H, d) -> (B, T, D)


class MultiHeadAttention(nn.Module):
    """Multi-head attention (Vaswani et al. 2017, §3.2.2): MultiHead = Concat(head_1..head_H) W_O.

    head_h = Attention(X_q W_Q^h, X_kv W_K^h, X_kv W_V^h); separate ``q_proj``, ``k_proj``,
    ``v_proj``, ``out_proj`` Linear layers (D -> D each).
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if d_model < 1 or n_heads < 1 or d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be a positive multiple of n_heads={n_heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.d_model, self.n_heads, self.dropout = d_model, n_heads, dropout
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                need_weights: bool = False, *, is_causal: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """x (B, Tq, D) queries; context (B, Tk, D) keys/values (default x: self-attention).

        mask: bool, True = may attend, broadcastable to (B, H, Tq, Tk).
        Returns out (B, Tq, D), or (out, weights (B, H, Tq, Tk)) when ``need_weights``
        (computed with the from-scratch path; otherwise the SDPA fast path).
        """
        context = x if context is None else context
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must be (B, T, {self.d_model}), got {tuple(x.shape)}")
        if context.ndim != 3 or context.shape[-1] != self.d_model or context.shape[0] != x.shape[0]:
            raise ValueError(f"context must be (B={x.shape[0]}, Tk, {self.d_model}), got {tuple(context.shape)}")
        H = self.n_heads
        q = split_heads(self.q_proj(x), H)                       # (B, H, Tq, D/H)
        k = split_heads(self.k_proj(context), H)                 # (B, H, Tk, D/H)
        v = split_heads(self.v_proj(context), H)                 # (B, H, Tk, D/H)
        p = self.dropout if self.training else 0.0
        if need_weights:
            if is_causal:
                mask = causal_mask(x.shape[1], x.device) if mask is None else mask & causal_mask(x.shape[1], x.device)
            out, weights = scaled_dot_product_attention(q, k, v, mask)
            if p > 0:
                out = F.dropout(weights, p, training=True) @ v
            return self.out_proj(merge_heads(out)), weights      # (B, Tq, D), (B, H, Tq, Tk)
        out = attend(q, k, v, mask, dropout_p=p, is_causal=is_causal, check_finite=False)  # (B, H, Tq, D/H)
        return self.out_proj(merge_heads(out))                   # (B, Tq, D)

    @torch.no_grad()
    def load_from_torch(self, mha: nn.MultiheadAttention) -> MultiHeadAttention:
        """Copy the weights of a ``torch.nn.MultiheadAttention`` (same D, H) into this module."""
        if mha.embed_dim != self.d_model or mha.num_heads != self.n_heads or mha.in_proj_weight is None:
            raise ValueError(f"need nn.MultiheadAttention(embed_dim={self.d_model}, num_heads={self.n_heads}) "
                             f"with packed in_proj weights")
        D = self.d_model
        for i, lin in enumerate((self.q_proj, self.k_proj, self.v_proj)):
            lin.weight.copy_(mha.in_proj_weight[i * D:(i + 1) * D])
            if lin.bias is not None:
                lin.bias.copy_(mha.in_proj_bias[i * D:(i + 1) * D])
        self.out_proj.weight.copy_(mha.out_proj.weight)
        if self.out_proj.bias is not None:
            self.out_proj.bias.copy_(mha.out_proj.bias)
        return self


def sinusoidal_positions(T: int, D: int) -> torch.Tensor:
    """(T, D) table: PE[t, 2i] = sin(t / 10000^(2i/D)), PE[t, 2i+1] = cos(t / 10000^(2i/D)) (§3.5)."""
    if int(T) < 1 or int(D) < 1:
        raise ValueError(f"T and D must be >= 1, got T={T}, D={D}")
    t = torch.arange(T, dtype=torch.float64)[:, None]           # (T, 1)
    freqs = 10000.0 ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)  # (ceil(D/2),)
    angles = t * freqs                                           # (T, ceil(D/2))
    pe = torch.empty(T, D, dtype=torch.float64)
    pe[:, 0::2] = angles.sin()
    pe[:, 1::2] = angles.cos()[:, : D // 2]
    return pe.float()


class LearnedPositions(nn.Module):
    """A learned (max_len, D) position table; ``forward(x)`` adds its first T rows to x (B, T, D)."""

    def __init__(self, max_len: int, D: int):
        super().__init__()
        if max_len < 1 or D < 1:
            raise ValueError(f"max_len and D must be >= 1, got {max_len}, {D}")
        self.max_len = max_len
        self.weight = nn.Parameter(torch.randn(max_len, D) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, D) -> x + P[:T] (B, T, D)."""
        if x.ndim != 3 or x.shape[-1] != self.weight.shape[1]:
            raise ValueError(f"expected x of shape (B, T, {self.weight.shape[1]}), got {tuple(x.shape)}")
        if x.shape[1] > self.max_len:
            raise ValueError(f"sequence length {x.shape[1]} exceeds max_len={self.max_len}")
        return x + self.weight[: x.shape[1]]
