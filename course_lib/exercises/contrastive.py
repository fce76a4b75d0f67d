"""Checkers for notebook 04 (contrastive learning): alignment and uniformity, and a batched augmentation.

* :func:`check_alignment_uniformity` - ``alignment(z1, z2, alpha)`` and ``uniformity(z, t)`` must
  equal Wang & Isola's (2020) metrics on the unit sphere (checked against a double loop); common
  slips (no normalisation, the pairs i = j kept, the distance not squared, no log) are named.
* :func:`check_translate` - ``fn(images, shifts) -> images`` must shift every image of a
  batch by its own whole-pixel (dx, dy), filling with 0, in one batched call.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .base import ExerciseWrong, Verdict, run_checker

__all__ = ["check_alignment_uniformity", "check_translate"]


def _unit(z: torch.Tensor) -> torch.Tensor:
    return z / z.norm(dim=1, keepdim=True)


def _reference_alignment(z1: torch.Tensor, z2: torch.Tensor, alpha: float = 2.0, *, normalize: bool = True
                         ) -> torch.Tensor:
    """Wang & Isola's alignment, E ||u1 - u2||^alpha over the pairs (and a slip: no normalisation)."""
    u1, u2 = (_unit(z1), _unit(z2)) if normalize else (z1, z2)
    return ((u1 - u2) ** 2).sum(1).sqrt().pow(alpha).mean()


def _reference_uniformity(z: torch.Tensor, t: float = 2.0, *, normalize: bool = True, distinct: bool = True,
                          squared: bool = True, log: bool = True) -> torch.Tensor:
    """Wang & Isola's uniformity, log E_{i<j} exp(-t ||u_i - u_j||^2), by a double loop (and its slips)."""
    u = _unit(z) if normalize else z
    terms = []
    for i in range(len(u)):
        for j in range(len(u)):
            if (i < j) if distinct else True:
                d = ((u[i] - u[j]) ** 2).sum()
                terms.append(torch.exp(-t * (d if squared else d.sqrt())))
    mean = torch.stack(terms).mean()
    return mean.log() if log else mean


def _as_number(out: object, what: str) -> float:
    if isinstance(out, torch.Tensor):
        if out.numel() != 1:
            raise ExerciseWrong(f"{what} must return one number (a mean over the pairs), got shape {tuple(out.shape)}")
        return float(out.detach())
    if isinstance(out, (float, int)):
        return float(out)
    raise ExerciseWrong(f"{what} must return a float or a 0-dim tensor, got {type(out).__name__}")


def check_alignment_uniformity(alignment: Callable[..., torch.Tensor | float],
                               uniformity: Callable[..., torch.Tensor | float], quiet: bool = False) -> Verdict:
    """Check a learner's ``alignment(z1, z2, alpha=2)`` and ``uniformity(z, t=2)`` (Wang & Isola, 2020)."""

    def close(a: float, b: torch.Tensor) -> bool:
        return abs(a - float(b)) <= 1e-5 + 1e-4 * abs(float(b))

    def check(align: Callable, unif: Callable) -> None:
        gen = torch.Generator().manual_seed(11)
        for n, d, alpha, t in ((6, 3, 2.0, 2.0), (9, 5, 1.0, 1.0), (5, 8, 3.0, 0.5)):
            z1 = 2.5 * torch.randn(n, d, generator=gen, dtype=torch.float64)
            z2 = 0.5 * (z1 + torch.randn(n, d, generator=gen, dtype=torch.float64))
            got = _as_number(align(z1.clone(), z2.clone(), alpha), "alignment")
            want = _reference_alignment(z1, z2, alpha)
            if not close(got, want):
                if close(got, _reference_alignment(z1, z2, alpha, normalize=False)):
                    raise ExerciseWrong("alignment: normalise each row to unit length first (u = z / ||z||); both "
                                        "metrics live on the unit sphere")
                if close(got, _reference_alignment(z1, z2, 2.0)) or close(got, _reference_alignment(z1, z2, 1.0)):
                    raise ExerciseWrong(f"alignment: with alpha={alpha} raise the distance ||u1 - u2|| to the power "
                                        "alpha (use the argument, not a fixed exponent)")
                raise ExerciseWrong(f"alignment: for {n} pairs in {d}-D with alpha={alpha} you return {got:.5f}, "
                                    f"expected {float(want):.5f}: the mean over pairs b of ||u1_b - u2_b||^alpha")
            got = _as_number(unif(z1.clone(), t), "uniformity")
            want = _reference_uniformity(z1, t)
            if close(got, want):
                continue
            slips = {"uniformity: normalise each row to unit length first (u = z / ||z||)": dict(normalize=False),
                     "uniformity: average over distinct pairs i < j only: the n pairs (i, i) have distance 0 and "
                     "pull the value up": dict(distinct=False),
                     "uniformity: use the SQUARED distance ||u_i - u_j||^2 inside the exponential": dict(squared=False),
                     "uniformity: take the log of the mean (log E exp(...)), not the mean itself": dict(log=False)}
            for message, kwargs in slips.items():
                if close(got, _reference_uniformity(z1, t, **kwargs)):
                    raise ExerciseWrong(message)
            raise ExerciseWrong(f"uniformity: for {n} points in {d}-D with t={t} you return {got:.5f}, expected "
                                f"{float(want):.5f}: log of the mean over i < j of exp(-t ||u_i - u_j||^2)")
        same = torch.randn(7, 4, generator=gen, dtype=torch.float64)
        if not abs(_as_number(align(same, 3.0 * same, 2.0), "alignment")) <= 1e-6:     # a NaN fails too
            raise ExerciseWrong("alignment: a view and a rescaled copy of it must align perfectly (0)")

    return run_checker("alignment and uniformity", (alignment, uniformity), lambda fs: check(*fs), quiet)


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
