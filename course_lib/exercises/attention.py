"""Checkers for notebook 01's exercises: stable softmax, masked scaled dot-product attention, head split/merge.

Each ``check_*`` runs the learner's function on fixed inputs, compares it with a
reference, and when it is wrong tries the usual mistakes (overflow, wrong axis,
missing √d_k, mask ignored / inverted / applied after the softmax, reshape without
transpose) to say *which* one it is. Solutions: ``course_lib.exercises.solutions.attention``.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from ..attention import scaled_dot_product_attention
from .base import ExerciseWrong, Verdict, run_checker

__all__ = ["check_stable_softmax", "check_masked_attention", "check_split_merge"]


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-6) -> bool:
    """Same shape and values; NaNs in the same places count as equal (for recognising mistakes)."""
    return a.shape == b.shape and bool(torch.allclose(a.double(), b.double(), atol=tol, rtol=tol, equal_nan=True))


def _as_tensor(out: object, what: str, shape: tuple[int, ...]) -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        raise ExerciseWrong(f"{what} should be a torch.Tensor, got {type(out).__name__}")
    if tuple(out.shape) != shape:
        raise ExerciseWrong(f"{what} should have shape {shape}, got {tuple(out.shape)}")
    return out


def _softmax_check(fn: Callable) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 7, generator=g, dtype=torch.float64)
    out = _as_tensor(fn(x), "softmax(x) for x of shape (4, 7)", (4, 7))
    if not _close(out, x.softmax(-1)):
        if _close(out, x.softmax(0)):
            raise ExerciseWrong("you normalised over dim 0; with the default dim=-1 each row (last dim) must sum to 1")
        if _close(out, x.exp()):
            raise ExerciseWrong("you returned exp(x) without dividing by the sum over `dim`")
        raise ExerciseWrong(f"values differ from torch.softmax(x, -1) by up to "
                            f"{float((out.double() - x.softmax(-1)).abs().max()):.3g}; the sums along the last dim "
                            f"are {[round(float(s), 3) for s in out.sum(-1)]}, expected all 1")
    out0 = _as_tensor(fn(x, dim=0), "softmax(x, dim=0)", (4, 7))
    if not _close(out0, x.softmax(0)):
        raise ExerciseWrong("softmax(x, dim=0) is wrong: use the `dim` argument (max and sum along `dim`, keepdim=True)")
    big = torch.tensor([[1000.0, 1001.0, 1002.0], [-1000.0, -1001.0, -1002.0]])   # float32
    out_big = _as_tensor(fn(big), "softmax of large inputs", (2, 3))
    if not torch.isfinite(out_big).all():
        raise ExerciseWrong("softmax([1000, 1001, 1002]) gives inf/NaN: exp(1000) overflows. Subtract the max along "
                            "`dim` first; softmax(x) = softmax(x - c) for any constant c")
    if not _close(out_big, big.softmax(-1), 1e-5):
        raise ExerciseWrong(f"large inputs give {out_big.tolist()}, expected {big.softmax(-1).tolist()}; "
                            f"subtract the max, not the min or mean")


def check_stable_softmax(fn: Callable, quiet: bool = False) -> Verdict:
    """Check ``fn(x, dim=-1)``: softmax along ``dim`` that does not overflow for large inputs."""
    return run_checker("stable softmax", fn, _softmax_check, quiet)


def _attention_inputs() -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(1)
    B, H, Tq, Tk, dk, dv = 2, 3, 5, 6, 16, 3
    q = torch.randn(B, H, Tq, dk, generator=g, dtype=torch.float64)
    k = torch.randn(B, H, Tk, dk, generator=g, dtype=torch.float64)
    v = torch.randn(B, H, Tk, dv, generator=g, dtype=torch.float64)
    mask = torch.rand(B, 1, Tq, Tk, generator=g) > 0.4                    # (B, 1, Tq, Tk)
    mask[..., 0] = True                                                    # every query keeps >= 1 key
    return q, k, v, mask


def _attention_check(fn: Callable) -> None:
    q, k, v, mask = _attention_inputs()
    result = fn(q, k, v, mask)
    if not isinstance(result, tuple) or len(result) != 2:
        raise ExerciseWrong("return a pair (out, weights)")
    out, w = result
    shape_w = (*q.shape[:-1], k.shape[-2])
    w = _as_tensor(w, "weights", shape_w)
    out = _as_tensor(out, "out", (*q.shape[:-1], v.shape[-1]))
    ref_out, ref_w = scaled_dot_product_attention(q, k, v, mask)
    if _close(w, ref_w):
        if not _close(out, ref_out):
            raise ExerciseWrong("the weights are right but the output is not weights @ v")
        return
    full = mask.expand(shape_w)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if _close(w, scores.softmax(-1)):
        raise ExerciseWrong("the mask is ignored: masked keys (mask False) must get weight 0")
    if _close(w, scores.masked_fill(mask, float("-inf")).softmax(-1)):
        raise ExerciseWrong("the mask is inverted: True means 'may attend'; fill the scores where mask is False")
    if _close(w, scores.softmax(-1) * full):
        raise ExerciseWrong("the mask is applied after the softmax: the rows no longer sum to 1. Fill masked scores "
                            "with -inf before the softmax")
    if _close(w, scores.masked_fill(~mask, float("-inf")).softmax(-2).nan_to_num(0.0)) or \
            _close(w.sum(-2), torch.ones_like(w.sum(-2))):
        raise ExerciseWrong("the softmax runs over the queries (dim -2); it must run over the keys (last dim) so "
                            "each query's weights sum to 1")
    raw = q @ k.transpose(-2, -1)
    if _close(w, raw.masked_fill(~mask, float("-inf")).softmax(-1)):
        raise ExerciseWrong("the scores are not scaled: divide q @ kᵀ by √d_k")
    if _close(w, (raw / q.shape[-1]).masked_fill(~mask, float("-inf")).softmax(-1)):
        raise ExerciseWrong("the scores are divided by d_k; divide by √d_k")
    if not torch.isfinite(w).all():
        raise ExerciseWrong("some weights are NaN or inf")
    if (w.abs() * ~full).max() > 1e-9:
        raise ExerciseWrong("masked keys (mask False) get non-zero weight")
    other_q = torch.randn(q.shape, generator=torch.Generator().manual_seed(2), dtype=q.dtype)
    w_other = fn(other_q, k, v, mask)[1]
    if isinstance(w_other, torch.Tensor) and _close(w_other, w):
        raise ExerciseWrong("the weights do not depend on the query: with another q they are unchanged. "
                            "Score each key against each query, q_i · k_j, not a key against itself")
    raise ExerciseWrong(f"weights differ from softmax(q kᵀ/√d_k) by up to {float((w - ref_w).abs().max()):.3g}")


def check_masked_attention(fn: Callable, quiet: bool = False) -> Verdict:
    """Check ``fn(q, k, v, mask) -> (out, weights)``: scaled dot-product attention with a bool mask."""
    return run_checker("masked scaled dot-product attention", fn, _attention_check, quiet)


def _split_merge_check(fns: tuple[Callable, Callable]) -> None:
    split, merge = fns
    B, T, D, H = 2, 3, 8, 4
    d = D // H
    x = torch.arange(B * T * D, dtype=torch.float32).view(B, T, D)
    ref = x.view(B, T, H, d).transpose(1, 2)                               # (B, H, T, d)
    s = _as_tensor(split(x, H), f"split_heads(x (B={B}, T={T}, D={D}), H={H})", (B, H, T, d))
    if not torch.equal(s, ref):
        if torch.equal(s, x.reshape(B, H, T, d)):
            raise ExerciseWrong("you reshaped (B, T, D) straight to (B, H, T, D/H), so one 'head' mixes features "
                                "of different time steps. View as (B, T, H, D/H) first, then transpose(1, 2)")
        raise ExerciseWrong(f"split_heads(x)[b, h, t] should be x[b, t, h*{d}:(h+1)*{d}]; "
                            f"got {s[0, 1, 0].tolist()} for b=0, h=1, t=0, expected {ref[0, 1, 0].tolist()}")
    m = _as_tensor(merge(ref), f"merge_heads(x (B={B}, H={H}, T={T}, d={d}))", (B, T, D))
    if not torch.equal(m, x):
        if torch.equal(m, ref.reshape(B, T, D)):
            raise ExerciseWrong("merge_heads reshapes (B, H, T, d) straight to (B, T, D): transpose(1, 2) back to "
                                "(B, T, H, d) first (then .reshape, since the transpose is not contiguous)")
        raise ExerciseWrong("merge_heads(split_heads(x)) does not give back x")


def check_split_merge(split_heads: Callable, merge_heads: Callable, quiet: bool = False) -> Verdict:
    """Check ``split_heads(x, H)``: (B, T, D) -> (B, H, T, D/H) and ``merge_heads`` its inverse."""
    return run_checker("split/merge heads", (split_heads, merge_heads), _split_merge_check, quiet)
