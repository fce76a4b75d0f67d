"""Checkers for notebook 04 (contrastive learning): alignment and uniformity, and a batched augmentation.

* :func:`check_alignment_uniformity` - ``alignment(z1, z2, alpha)`` and ``uniformity(z, t)`` must
  equal Wang & Isola's (2020) metrics on the unit sphere (checked against a double loop); common
  slips (no normalisation, the pairs i = j kept, the distance not squared, no log) are named.
* :func:`check_translate` - ``fn(images, shifts) -> images`` must shift every image of a
  batch by its own whole-pixel (dx, dy), filling with 0, in one batched call.
* :func:`check_nt_xent_logits` - ``fn(z1, z2, tau) -> (logits, targets)`` must build NT-Xent's
  (2B, 2B) cosine-similarity logits over tau with the diagonal masked, and the index of each anchor's
  other view; the usual slips (diagonal kept, the anchor as its own target, no normalisation, tau
  multiplied) are named.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .base import ExerciseWrong, Verdict, run_checker

__all__ = ["check_alignment_uniformity", "check_translate", "check_nt_xent_logits"]


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


def _reference_nt_xent(z1: torch.Tensor, z2: torch.Tensor, tau: float, *, normalize: bool = True,
                       tau_times: bool = False) -> torch.Tensor:
    """NT-Xent logits by a double loop (and its slips): s_ij / tau for i != j over the 2B views, -inf on i = j."""
    u = torch.cat([z1, z2])
    u = _unit(u) if normalize else u
    n = len(u)
    logits = torch.empty(n, n, dtype=u.dtype)
    for i in range(n):
        for j in range(n):
            s = (u[i] * u[j]).sum()
            logits[i, j] = float("-inf") if i == j else (s * tau if tau_times else s / tau)
    return logits


def check_nt_xent_logits(fn: Callable[[torch.Tensor, torch.Tensor, float], tuple[torch.Tensor, torch.Tensor]],
                         quiet: bool = False) -> Verdict:
    """Check a learner's ``logits_and_targets(z1, z2, tau)``: for B pairs, logits (2B, 2B) with
    logits[i, j] = cos(u_i, u_j) / tau and -inf on the diagonal, and targets (2B,) of integers with the
    other view's index, i + B for i < B and i - B for i >= B (eq. NT-Xent, Chen et al. 2020)."""

    def check(f: Callable) -> None:
        gen = torch.Generator().manual_seed(5)
        for b, d, tau in ((4, 3, 0.5), (6, 8, 0.1), (3, 5, 1.0)):
            z1 = 3.0 * torch.randn(b, d, generator=gen, dtype=torch.float64)
            z2 = z1 + 0.5 * torch.randn(b, d, generator=gen, dtype=torch.float64)
            out = f(z1.clone(), z2.clone(), tau)
            if not (isinstance(out, tuple) and len(out) == 2):
                raise ExerciseWrong("return a pair: (logits of shape (2B, 2B), targets of shape (2B,))")
            logits, targets = out
            if not isinstance(logits, torch.Tensor) or logits.shape != (2 * b, 2 * b):
                raise ExerciseWrong(f"logits for B = {b} pairs must have shape ({2 * b}, {2 * b}): every view "
                                    f"against every view, got {getattr(logits, 'shape', type(logits).__name__)}")
            if not logits.is_floating_point():
                raise ExerciseWrong(f"logits must be floating point (similarities divided by tau), got {logits.dtype}")
            if not isinstance(targets, torch.Tensor) or targets.shape != (2 * b,):
                raise ExerciseWrong(f"targets must be a tensor of shape ({2 * b},): one index per anchor, got "
                                    f"{getattr(targets, 'shape', type(targets).__name__)}")
            if targets.is_floating_point() or targets.dtype == torch.bool:
                raise ExerciseWrong(f"targets must be integer class indices (torch.long), as cross_entropy "
                                    f"expects, got {targets.dtype}")
            want = _reference_nt_xent(z1, z2, tau)
            got = logits.detach().double().cpu()
            diag = torch.eye(2 * b, dtype=torch.bool)
            if torch.isfinite(got[diag]).any():
                raise ExerciseWrong("mask the diagonal: logits[i, i] must be -inf. A view is not a candidate for "
                                    "itself; s_ii / tau = 1 / tau is the largest logit and puts a floor of log 2 "
                                    "under the loss")
            off = ~diag
            if not torch.allclose(got[off], want[off], rtol=1e-4, atol=1e-6):
                if torch.allclose(got[off], _reference_nt_xent(z1, z2, tau, normalize=False)[off], rtol=1e-4):
                    raise ExerciseWrong("normalise each row to unit length before the dot products: NT-Xent uses "
                                        "cosine similarities (otherwise the loss depends on the vectors' lengths)")
                if torch.allclose(got[off], _reference_nt_xent(z1, z2, tau, tau_times=True)[off], rtol=1e-4):
                    raise ExerciseWrong("divide the similarities by tau, do not multiply: a small temperature "
                                        "sharpens the softmax")
                raise ExerciseWrong(f"logits for B = {b}, tau = {tau}: off the diagonal they must be "
                                    "cos(u_i, u_j) / tau over the 2B views stacked as [z1; z2]")
            other = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)])
            if not torch.equal(targets.detach().cpu().long(), other):
                if torch.equal(targets.detach().cpu().long(), torch.arange(2 * b)):
                    raise ExerciseWrong("the target of anchor i is its OTHER view, not itself: i + B for the first "
                                        "B rows, i - B for the last B (the diagonal is masked, so i itself can "
                                        "never be chosen)")
                if torch.equal(targets.detach().cpu().long()[:b], other[:b]):
                    raise ExerciseWrong("the first B targets are right; the last B anchors (the z2 views) point "
                                        "back to their z1 view: target i - B for i >= B")
                raise ExerciseWrong(f"targets for B = {b}: expected {other.tolist()} (each anchor's other view), "
                                    f"got {targets.tolist()}")

    return run_checker("NT-Xent logits and targets", fn, check, quiet)
