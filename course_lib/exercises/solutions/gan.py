"""Reference solutions for notebook 03's exercises (kept apart from the notebook)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["smoothed_discriminator_loss", "generator_loss"]


def smoothed_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                                real_target: float) -> torch.Tensor:
    """One-sided label smoothing (Salimans et al., 2016, section 3.4): BCE(real, y) + BCE(fake, 0).

    BCE with a soft target y from a logit l: -[y log sigmoid(l) + (1 - y) log(1 - sigmoid(l))]
    = y softplus(-l) + (1 - y) softplus(l).
    """
    real = real_target * F.softplus(-real_logits) + (1 - real_target) * F.softplus(real_logits)   # (B,)
    return real.mean() + F.softplus(fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating: -mean log sigmoid(fake) = mean softplus(-fake)."""
    return F.softplus(-fake_logits).mean()
