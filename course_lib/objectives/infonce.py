"""InfoNCE / NT-Xent: the contrastive loss of SimCLR, as softmax cross-entropy over candidates.

For a batch of B images, two views give 2B embeddings z_1..z_2B; view i's positive
is the other view of the same image, p(i) = i +/- B. With unit vectors u = z / ||z||
and cosine similarities s_ij = u_i . u_j (SimCLR, Chen et al. 2020, eq. 1):

    l_i = -log  exp(s_{i,p(i)} / tau) / sum_{k != i} exp(s_ik / tau)
    L   = (1 / 2B) sum_i l_i

i.e. cross-entropy of a (2B - 1)-way classification "which candidate is my other
view?", with the self-similarity s_ii (always 1) excluded. This is InfoNCE (van den
Oord et al., 2018, "Representation Learning with Contrastive Predictive Coding"), and
log(2B - 1) - L is a lower bound on the mutual information between views.
It is NOT a triplet loss (one negative, a margin) and NOT an MSE between views (no
negatives at all, so collapse to a constant is a minimum).

Used by notebook 04 and ``course_lib.chapters.contrastive``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["nt_xent", "nt_xent_logits", "pair_similarities"]


def _check_pair(z1: torch.Tensor, z2: torch.Tensor) -> None:
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(f"expected two (B, D) embeddings of equal shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if z1.shape[0] < 2:
        raise ValueError(f"NT-Xent needs B >= 2 images (some negatives), got B={z1.shape[0]}")
    if not (z1.is_floating_point() and z2.is_floating_point()):
        raise ValueError(f"embeddings must be floating point, got {z1.dtype} and {z2.dtype}")


def nt_xent_logits(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.2
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (2B, 2B) = s_ij / tau with the diagonal set to -inf, and targets (2B,) = index of the positive.

    z1, z2: (B, D) projections of view 1 and view 2 (row b of each comes from image b).
    """
    _check_pair(z1, z2)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    b = z1.shape[0]
    u = F.normalize(torch.cat([z1, z2]).float(), dim=1)                   # (2B, D) unit rows
    logits = u @ u.T / temperature                                        # (2B, 2B)
    self_mask = torch.eye(2 * b, dtype=torch.bool, device=u.device)
    logits = logits.masked_fill(self_mask, float("-inf"))                 # exclude k = i
    targets = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(u.device)   # p(i) = i +/- B
    return logits, targets


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """NT-Xent loss (scalar, mean over all 2B anchors); see the module docstring for the equation."""
    logits, targets = nt_xent_logits(z1, z2, temperature)
    return F.cross_entropy(logits, targets)


@torch.no_grad()
def pair_similarities(z1: torch.Tensor, z2: torch.Tensor) -> tuple[float, float]:
    """(mean cosine similarity of positive pairs, mean over all negative pairs) for monitoring."""
    _check_pair(z1, z2)
    b = z1.shape[0]
    u = F.normalize(torch.cat([z1, z2]).float(), dim=1)                   # (2B, D)
    sims = u @ u.T                                                        # (2B, 2B)
    pos = torch.diagonal(sims, offset=b)                                  # s_{i, i+B}, (B,)
    neg_mask = ~torch.eye(2 * b, dtype=torch.bool, device=u.device)
    idx = torch.arange(b, device=u.device)
    neg_mask[idx, idx + b] = False
    neg_mask[idx + b, idx] = False
    return float(pos.mean()), float(sims[neg_mask].mean())
