"""Reference solutions to notebook 01's exercises (checked by course_lib.exercises.attention)."""

from __future__ import annotations

import math

import torch

__all__ = ["stable_softmax", "masked_attention", "split_heads", "merge_heads"]


def stable_softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """softmax(x)_i = exp(x_i - max x) / sum_j exp(x_j - max x) along ``dim``."""
    z = x - x.max(dim=dim, keepdim=True).values
    e = z.exp()
    return e / e.sum(dim=dim, keepdim=True)


def masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """(out, weights) of softmax(q kᵀ/√d_k, masked before the softmax) v; mask True = may attend."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


def split_heads(x: torch.Tensor, H: int) -> torch.Tensor:
    """(B, T, D) -> (B, H, T, D/H)."""
    B, T, D = x.shape
    return x.view(B, T, H, D // H).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, d) -> (B, T, H*d)."""
    B, H, T, d = x.shape
    return x.transpose(1, 2).reshape(B, T, H * d)
