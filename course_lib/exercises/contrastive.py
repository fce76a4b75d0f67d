"""Checkers for notebook 04 (contrastive learning): NT-Xent, and a batched augmentation.

* :func:`check_nt_xent` - ``fn(z1, z2, temperature) -> scalar`` must equal SimCLR's NT-Xent
  (Chen et al., 2020, eq. 1); common slips (self-similarity kept, no normalisation, no
  temperature, one direction only, sum instead of mean) are named in the verdict.
* :func:`check_translate` - ``fn(images, shifts) -> images`` must shift every image of a
  batch by its own whole-pixel (dx, dy), filling with 0, in one batched call.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .base import ExerciseWrong, Verdict, run_checker

__all__ = ["check_nt_xent", "check_translate"]


def _reference_nt_xent(z1: torch.Tensor, z2: torch.Tensor, t: float, *, normalize: bool = True,
                       exclude_self: bool = True, both: bool = True, reduction: str = "mean") -> torch.Tensor:
    """NT-Xent and its usual wrong variants (for naming the mistake)."""
    b = z1.shape[0]
    z = torch.cat([z1, z2]).double()
    u = F.normalize(z, dim=1) if normalize else z
    logits = u @ u.T / t
    if exclude_self:
        logits = logits.masked_fill(torch.eye(2 * b, dtype=torch.bool), float("-inf"))
    targets = torch.cat([torch.arange(b, 2 * b), torch.arange(b)])
    if not both:
        logits, targets = logits[:b], targets[:b]
    return F.cross_entropy(logits, targets, reduction=reduction)


def check_nt_xent(fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor], quiet: bool = False) -> Verdict:
    """Check a learner's ``nt_xent(z1, z2, temperature)``."""

    def check(f: Callable) -> None:
        gen = torch.Generator().manual_seed(4)
        for b, d, t in ((4, 3, 0.5), (8, 16, 0.1), (5, 7, 1.0)):
            z1 = torch.randn(b, d, generator=gen, dtype=torch.float64) * 3
            z2 = z1 + 0.5 * torch.randn(b, d, generator=gen, dtype=torch.float64)
            out = f(z1.clone(), z2.clone(), t)
            if not isinstance(out, torch.Tensor):
                raise ExerciseWrong(f"return a torch.Tensor, got {type(out).__name__}")
            if out.ndim != 0:
                raise ExerciseWrong(f"return a scalar (mean over the 2B anchors), got shape {tuple(out.shape)}")
            got = out.detach().double()
            want = _reference_nt_xent(z1, z2, t)
            if torch.isclose(got, want, rtol=1e-4, atol=1e-5):
                continue
            slips = {
                "the self-similarity s_ii is still in the denominator: mask the diagonal (k != i) with -inf":
                    dict(exclude_self=False),
                "the embeddings are not L2-normalised: use cosine similarity u_i . u_j with u = z / ||z||":
                    dict(normalize=False),
                "the loss uses only view 1 as anchors: average over all 2B anchors (both views)":
                    dict(both=False),
                "the loss is summed: average it over the 2B anchors": dict(reduction="sum"),
            }
            for message, kwargs in slips.items():
                if torch.isclose(got, _reference_nt_xent(z1, z2, t, **kwargs), rtol=1e-4, atol=1e-5):
                    raise ExerciseWrong(message)
            if torch.isclose(got, _reference_nt_xent(z1, z2, 1.0), rtol=1e-4, atol=1e-5):
                raise ExerciseWrong("the temperature is missing: divide the similarities by temperature")
            raise ExerciseWrong(f"for B={b}, D={d}, temperature={t} you return {float(got):.5f}, expected "
                                f"{float(want):.5f}; the positive of row i is row i+B (and of row i+B, row i)")
        z1 = torch.randn(6, 4, generator=gen, dtype=torch.float64)
        z2 = torch.randn(6, 4, generator=gen, dtype=torch.float64)
        if not torch.isclose(f(5 * z1, 0.2 * z2, 0.5).detach().double(), _reference_nt_xent(z1, z2, 0.5),
                             rtol=1e-4, atol=1e-5):
            raise ExerciseWrong("rescaling an embedding changed the loss: normalise each row to unit length")

    return run_checker("NT-Xent", fn, check, quiet)


def _reference_translate(images: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Whole-pixel shifts by slicing (independent of grid_sample)."""
    out = torch.zeros_like(images)
    h, w = images.shape[-2:]
    for i, (dx, dy) in enumerate(shifts.tolist()):
        dx, dy = int(dx), int(dy)
        ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
        xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
        out[i, :, yd, xd] = images[i, :, ys, xs]
    return out


def check_translate(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], quiet: bool = False) -> Verdict:
    """Check a learner's ``translate(images, shifts)``: shifts (B, 2) = (dx right, dy down) in pixels."""

    def check(f: Callable) -> None:
        gen = torch.Generator().manual_seed(7)
        images = torch.rand(6, 1, 12, 10, generator=gen)
        shifts = torch.tensor([[0, 0], [2, 0], [0, 3], [-1, 2], [3, -2], [-4, -1]])
        out = f(images.clone(), shifts.clone())
        if not isinstance(out, torch.Tensor) or out.shape != images.shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ExerciseWrong(f"return images shaped like the input {tuple(images.shape)}, got {got}")
        want = _reference_translate(images, shifts)
        if torch.allclose(out, want, atol=1e-4):
            return
        if torch.allclose(out, _reference_translate(images, -shifts), atol=1e-4):
            raise ExerciseWrong("the images move the wrong way: a shift (dx, dy) moves the content right by dx and "
                                "down by dy, so output(x) = input(x - shift): the grid offset is -shift")
        if torch.allclose(out, _reference_translate(images, shifts.flip(1)), atol=1e-4):
            raise ExerciseWrong("x and y are swapped: shifts[:, 0] is dx (columns, width), shifts[:, 1] is dy (rows)")
        if not torch.allclose(out[0], images[0], atol=1e-4):
            raise ExerciseWrong("a zero shift changed the image: use align_corners=False consistently in "
                                "affine_grid and grid_sample (or check the identity part of theta)")
        for i in range(1, len(shifts)):
            if torch.allclose(out[i], want[0 if i == 0 else i], atol=1e-4):
                continue
            dx, dy = shifts[i].tolist()
            raise ExerciseWrong(f"image {i} (shift dx={dx}, dy={dy}) is wrong: one pixel is 2/W (or 2/H) in the "
                                "normalised [-1, 1] coordinates of affine_grid, and empty pixels must be 0")

    return run_checker("translate", fn, check, quiet)
