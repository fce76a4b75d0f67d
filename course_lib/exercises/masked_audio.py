"""Checkers for notebook 06 (masked reconstruction on speech): a mel filterbank, span masking, the loss.

* :func:`check_mel_filterbank` - ``fn(n_mels, n_fft, sample_rate, f_min, f_max) -> (n_mels, n_fft//2+1)``
  must equal the triangles of :func:`course_lib.audio.mel_filterbank`; a linear (not mel) spacing,
  edges in mel used as Hz, or peaks not at 1 are named.
* :func:`check_span_mask` - ``fn(frames, starts, span) -> (frames,) bool`` must hide ``span`` frames
  from each start (clipped at the end), overlapping spans merged.
* :func:`check_masked_l1` - ``fn(pred, target, mask) -> scalar`` must be the mean absolute error over
  the hidden frames only; averaging over every frame, or dividing by the frame count instead of
  frame x band count, are named.
* :func:`check_hide_bands` - ``fn(x, start, width, n_mels) -> x'`` must zero mel bands
  ``start .. start + width - 1`` in every stacked frame of (B, S, k·n_mels) features (TERA's
  frequency mask); hiding them in the first stacked frame only or an off-by-one width are named
  (changing ``x`` in place is noted by :func:`run_checker`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..audio import mel_filterbank
from .base import ExerciseWrong, Verdict, run_checker

__all__ = ["check_mel_filterbank", "check_span_mask", "check_masked_l1", "check_hide_bands"]


def _tensor(out, name: str) -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        raise ExerciseWrong(f"return a torch.Tensor from {name}, got {type(out).__name__}")
    return out


def _linear_bank(n_mels: int, n_fft: int, sr: int, f_min: float, f_max: float) -> torch.Tensor:
    edges = torch.linspace(f_min, f_max, n_mels + 2, dtype=torch.float64)
    freqs = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * sr / n_fft
    lo, peak, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    return torch.clamp(torch.minimum((freqs - lo) / (peak - lo), (hi - freqs) / (hi - peak)), min=0)


def check_mel_filterbank(fn: Callable, quiet: bool = False) -> Verdict:
    """Check a learner's ``mel_filterbank(n_mels, n_fft, sample_rate, f_min, f_max)``."""

    def check(f: Callable) -> None:
        for args in ((10, 256, 8_000, 0.0, 4_000.0), (40, 400, 16_000, 20.0, 8_000.0), (6, 64, 16_000, 300.0, 5_000.0)):
            got = _tensor(f(*args), "mel_filterbank").double()
            want = mel_filterbank(*args).double()
            if got.shape != want.shape:
                raise ExerciseWrong(f"expected shape (n_mels, n_fft // 2 + 1) = {tuple(want.shape)}, got "
                                    f"{tuple(got.shape)}")
            if torch.allclose(got, want, atol=1e-4):
                continue
            if torch.allclose(got, _linear_bank(*args), atol=1e-4):
                raise ExerciseWrong("the edges are equally spaced in Hz: space them equally in mel "
                                    "(hz_to_mel the ends, linspace, then mel_to_hz back)")
            scale = (got * want).sum(dim=1, keepdim=True) / (want * want).sum(dim=1, keepdim=True).clamp_min(1e-12)
            if torch.allclose(got, scale * want, atol=1e-4):
                raise ExerciseWrong("the triangles have the right shape but not a peak of 1 (each is scaled)")
            raise ExerciseWrong(f"values differ from the triangles for {args} (largest gap "
                                f"{float((got - want).abs().max()):.3g}); triangle j rises from edge j to 1 at "
                                f"edge j+1 and falls to 0 at edge j+2")

    return run_checker("mel filterbank", fn, check, quiet)


def _reference_span_mask(frames: int, starts: torch.Tensor, span: int) -> torch.Tensor:
    mask = torch.zeros(frames, dtype=torch.bool)
    for s in starts.tolist():
        mask[s: s + span] = True
    return mask


def check_span_mask(fn: Callable, quiet: bool = False) -> Verdict:
    """Check a learner's ``span_mask(frames, starts, span)``."""

    def check(f: Callable) -> None:
        for frames, starts, span in ((10, [2], 3), (20, [0, 5, 6], 4), (12, [9], 5), (8, [], 2)):
            starts_t = torch.tensor(starts, dtype=torch.long)
            got = _tensor(f(frames, starts_t.clone(), span), "span_mask")
            want = _reference_span_mask(frames, starts_t, span)
            if got.shape != want.shape:
                raise ExerciseWrong(f"expected shape ({frames},), got {tuple(got.shape)}")
            if got.dtype != torch.bool:
                raise ExerciseWrong(f"return a bool tensor (True = hidden), got {got.dtype}")
            if torch.equal(got, want):
                continue
            if starts and torch.equal(got, _reference_span_mask(frames, starts_t, span - 1)):
                raise ExerciseWrong("each span hides span - 1 frames: frames start .. start + span - 1 "
                                    "are span frames")
            raise ExerciseWrong(f"for frames={frames}, starts={starts}, span={span} expected hidden frames "
                                f"{want.nonzero().flatten().tolist()}, got {got.nonzero().flatten().tolist()}")

    return run_checker("span mask", fn, check, quiet)


def check_masked_l1(fn: Callable, quiet: bool = False) -> Verdict:
    """Check a learner's ``masked_l1(pred, target, mask)`` (mean |pred - target| over hidden frames' bands)."""

    def check(f: Callable) -> None:
        gen = torch.Generator().manual_seed(6)
        for b, t, fdim in ((2, 8, 3), (3, 12, 5)):
            pred = torch.randn(b, t, fdim, generator=gen, dtype=torch.float64)
            target = torch.randn(b, t, fdim, generator=gen, dtype=torch.float64)
            mask = torch.rand(b, t, generator=gen) < 0.3
            mask[0, 0] = True
            out = _tensor(f(pred.clone(), target.clone(), mask.clone()), "masked_l1")
            if out.ndim != 0:
                raise ExerciseWrong(f"return a scalar, got shape {tuple(out.shape)}")
            err = (pred - target).abs()
            want = err[mask].mean()
            if torch.isclose(out.double(), want, rtol=1e-6):
                continue
            if torch.isclose(out.double(), err.mean(), rtol=1e-6):
                raise ExerciseWrong("the mean runs over every frame: score only the hidden frames (err[mask])")
            if torch.isclose(out.double(), err[mask].sum() / mask.sum(), rtol=1e-6):
                raise ExerciseWrong("divided by the number of hidden frames only: average over hidden frames "
                                    "and bands (err[mask].mean())")
            if torch.isclose(out.double(), ((pred - target) ** 2)[mask].mean(), rtol=1e-6):
                raise ExerciseWrong("that is the squared error: the exercise asks for L1, |pred - target|")
            raise ExerciseWrong(f"expected {float(want):.6f}, got {float(out):.6f}")

    return run_checker("masked-frame L1 loss", fn, check, quiet)


def _reference_hide_bands(x: torch.Tensor, start: int, width: int, n_mels: int, frames: int | None = None
                          ) -> torch.Tensor:
    out = x.clone()
    for j in range(out.shape[-1] // n_mels if frames is None else frames):     # each stacked frame
        out[..., j * n_mels + start: j * n_mels + start + width] = 0.0
    return out


def check_hide_bands(fn: Callable, quiet: bool = False) -> Verdict:
    """Check a learner's ``hide_bands(x, start, width, n_mels)`` on stacked frames (B, S, k·n_mels)."""

    def check(f: Callable) -> None:
        gen = torch.Generator().manual_seed(11)
        for k, n_mels, start, width in ((3, 8, 2, 3), (2, 10, 0, 4), (3, 6, 4, 2), (1, 5, 1, 1)):
            x = torch.randn(2, 4, k * n_mels, generator=gen) + 3.0           # no value is 0 by chance
            before = x.clone()
            got = _tensor(f(x, start, width, n_mels), "hide_bands")
            want = _reference_hide_bands(before, start, width, n_mels)
            if got.shape != want.shape:
                raise ExerciseWrong(f"expected shape {tuple(want.shape)} (the input's), got {tuple(got.shape)}")
            if torch.equal(got, want):
                continue
            if k > 1 and torch.equal(got, _reference_hide_bands(before, start, width, n_mels, frames=1)):
                raise ExerciseWrong("only the first stacked frame lost its bands: each step holds k frames of "
                                    "n_mels bands side by side, hide the bands in every one of them")
            for off, what in ((-1, "width - 1"), (1, "width + 1")):
                if width + off >= 0 and torch.equal(got, _reference_hide_bands(before, start, width + off, n_mels)):
                    raise ExerciseWrong(f"{what} bands are hidden: bands start .. start + width - 1 are width bands")
            raise ExerciseWrong(f"for k={k}, n_mels={n_mels}, start={start}, width={width}: expected the values "
                                f"of bands {start}..{start + width - 1} of each stacked frame set to 0 and the rest "
                                f"unchanged")

    return run_checker("frequency mask", fn, check, quiet)
