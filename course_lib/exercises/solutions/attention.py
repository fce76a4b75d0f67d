"""Reference solutions to notebook 01's exercises (checked by course_lib.exercises.attention)."""

from __future__ import annotations

import math

import torch

__all__ = ["stable_softmax", "causal_padding_mask", "grouped_query_attention"]


def stable_softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """softmax(x)_i = exp(x_i - max x) / sum_j exp(x_j - max x) along ``dim``."""
    z = x - x.max(dim=dim, keepdim=True).values
    e = z.exp()
    return e / e.sum(dim=dim, keepdim=True)


def causal_padding_mask(ids: torch.Tensor, pad_id: int) -> torch.Tensor:
    """ids (B, T) -> bool (B, 1, T, T): query i may attend to key j iff j <= i and ids[b, j] != pad_id."""
    T = ids.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool, device=ids.device).tril()    # (T, T)
    real_keys = (ids != pad_id)[:, None, None, :]                            # (B, 1, 1, T)
    return causal & real_keys                                                # (B, 1, T, T)


def grouped_query_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """q (B, H, T, d), k and v (B, G, T, d) -> (B, H, T, d); query head h uses key/value head h // (H/G)."""
    r = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(r, dim=1), v.repeat_interleave(r, dim=1)      # (B, H, T, d)
    weights = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(dim=-1)   # (B, H, T, T)
    return weights @ v
