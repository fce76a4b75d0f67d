"""Reference solutions for notebook 04's exercises (alignment and uniformity; a batched translation augmentation;
NT-Xent's logits and targets)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["alignment", "uniformity", "translate", "nt_xent_logits"]


def alignment(z1: torch.Tensor, z2: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
    """Wang & Isola (2020): E_b ||u1_b - u2_b||^alpha over the positive pairs, u = z / ||z||. (N, D) x2 -> ()."""
    u1, u2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    return (u1 - u2).norm(dim=1).pow(alpha).mean()


def uniformity(z: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """Wang & Isola (2020): log E_{i<j} exp(-t ||u_i - u_j||^2), u = z / ||z||. (N, D) -> ()."""
    u = F.normalize(z, dim=1)
    sq = torch.pdist(u).pow(2)                                   # (N (N - 1) / 2,) distinct pairs i < j
    return torch.exp(-t * sq).mean().log()


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


def nt_xent_logits(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """NT-Xent's logits (2B, 2B): cosine similarities / tau, diagonal -inf; targets (2B,): the other view."""
    b = len(z1)
    u = F.normalize(torch.cat([z1, z2]), dim=1)                                    # (2B, D) unit rows
    logits = (u @ u.T / tau).masked_fill(torch.eye(2 * b, dtype=torch.bool, device=u.device), float("-inf"))
    targets = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(u.device)  # i + B, then i - B
    return logits, targets
