"""Reference solutions to notebook 02's exercises (checked by course_lib.exercises.mlm)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["mask_tokens", "masked_loss"]


def mask_tokens(ids: torch.Tensor, vocab_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: 15% of real tokens (id >= 5) selected; 80% -> [MASK]=4, 10% random real token, 10% kept.

    Returns (inputs, targets); targets = original id where selected, -100 elsewhere.
    """
    real = ids >= 5                                                           # not [PAD] [UNK] [CLS] [SEP] [MASK]
    selected = real & (torch.rand(ids.shape, generator=generator) < 0.15)
    v = torch.rand(ids.shape, generator=generator)
    to_mask = selected & (v < 0.8)
    to_random = selected & (v >= 0.8) & (v < 0.9)
    random_ids = torch.randint(5, vocab_size, ids.shape, generator=generator)
    inputs = torch.where(to_random, random_ids, ids.masked_fill(to_mask, 4))
    targets = ids.masked_fill(~selected, -100)
    return inputs, targets


def masked_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over positions whose target is not -100; logits (B, T, V), targets (B, T)."""
    keep = targets != -100                                                    # (B, T)
    return F.cross_entropy(logits[keep], targets[keep])                       # (N, V), (N,)
