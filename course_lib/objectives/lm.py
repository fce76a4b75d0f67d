"""Language-model objective: next-token cross-entropy.

:func:`lm_loss` gives mean nats per predicted token (notebooks 01 and 05).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["lm_loss"]


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy -1/N sum_t log p(x_{t+1} | x_{<=t}).

    logits (B, T, V) float, targets (B, T) int64 already shifted by one position.
    """
    if logits.ndim != 3 or targets.shape != logits.shape[:2]:
        raise ValueError(f"expected logits (B, T, V) and targets (B, T); got {tuple(logits.shape)} "
                         f"and {tuple(targets.shape)}")
    if targets.numel() == 0:
        raise ValueError(f"lm_loss needs at least one target token, got targets of shape {tuple(targets.shape)}")
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))
