"""Reference solutions for notebook 03's exercises (kept apart from the notebook)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["discriminator_loss", "generator_loss"]


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """BCE(real, 1) + BCE(fake, 0) = mean softplus(-real) + mean softplus(fake)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating: -mean log sigmoid(fake) = mean softplus(-fake)."""
    return F.softplus(-fake_logits).mean()
