"""Reference solutions for notebook 04's exercises (NT-Xent; a batched translation augmentation)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["nt_xent", "translate"]


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent: cross-entropy over the 2B - 1 candidates, self excluded, unit vectors, / temperature."""
    b = z1.shape[0]
    u = F.normalize(torch.cat([z1, z2]), dim=1)                  # (2B, D)
    logits = u @ u.T / temperature                               # (2B, 2B)
    logits = logits.masked_fill(torch.eye(2 * b, dtype=torch.bool), float("-inf"))
    targets = torch.cat([torch.arange(b, 2 * b), torch.arange(b)])
    return F.cross_entropy(logits, targets)


def translate(images: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Shift image b right by shifts[b, 0] and down by shifts[b, 1] pixels; empty pixels become 0."""
    b, c, h, w = images.shape
    theta = torch.zeros(b, 2, 3, dtype=images.dtype)
    theta[:, 0, 0] = 1.0
    theta[:, 1, 1] = 1.0
    # output(x) = input(x - shift); one pixel is 2 / W in normalised [-1, 1] coordinates
    theta[:, 0, 2] = -2.0 * shifts[:, 0].to(images.dtype) / w
    theta[:, 1, 2] = -2.0 * shifts[:, 1].to(images.dtype) / h
    grid = F.affine_grid(theta, [b, c, h, w], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
