"""Reference solutions to notebook 02's exercises (checked by course_lib.exercises.mlm)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["whole_word_mask", "masked_loss"]


def whole_word_mask(ids: torch.Tensor, is_piece: torch.Tensor, generator: torch.Generator, p: float = 0.15
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole-word BERT masking: each word (a real token plus the '##' pieces after it) selected with probability p.

    ids (B, T) int64 with special ids 0-4 ([MASK] = 4); is_piece (V,) bool, True for '##' continuation
    tokens. Every token of a selected word is selected; each selected token then becomes [MASK] (80%),
    a random real token (10%) or stays (10%). Returns (inputs, targets); targets = original id where
    selected, -100 elsewhere.
    """
    B, T = ids.shape
    real = ids >= 5                                                           # (B, T) maskable tokens
    starts = real & ~is_piece[ids]                                            # (B, T) first token of a word
    positions = torch.arange(T, device=ids.device).expand(B, T)               # (B, T)
    word_start = torch.where(starts, positions, 0).cummax(dim=-1).values      # (B, T) where each token's word starts
    u = torch.rand(ids.shape, generator=generator)                            # one draw per position...
    selected = real & (u.gather(-1, word_start) < p)                          # ...a word uses its first token's
    v = torch.rand(ids.shape, generator=generator)                            # 80 / 10 / 10, per token
    to_mask = selected & (v < 0.8)
    to_random = selected & (v >= 0.8) & (v < 0.9)
    random_ids = torch.randint(5, len(is_piece), ids.shape, generator=generator)
    inputs = torch.where(to_random, random_ids, ids.masked_fill(to_mask, 4))
    targets = ids.masked_fill(~selected, -100)
    return inputs, targets


def masked_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over positions whose target is not -100; logits (B, T, V), targets (B, T)."""
    keep = targets != -100                                                    # (B, T)
    return F.cross_entropy(logits[keep], targets[keep])                       # (N, V), (N,)
