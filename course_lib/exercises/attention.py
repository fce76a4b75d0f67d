"""Checkers for notebook 01's exercises: stable softmax, a causal + padding mask, grouped-query attention.

Each ``check_*`` runs the learner's function on fixed inputs, compares it with a
reference, and when it is wrong tries the usual mistakes (overflow, wrong axis;
a mask missing one of its parts, combined with "or", inverted, or padding the
queries instead of the keys; key/value heads tiled with ``repeat`` instead of
``repeat_interleave``, missing √d) to say *which* one it is.
Solutions: ``course_lib.exercises.solutions.attention``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..attention import scaled_dot_product_attention
from .base import ExerciseWrong, Verdict, run_checker

__all__ = ["check_stable_softmax", "check_causal_padding_mask", "check_grouped_query_attention"]


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
        raise ExerciseWrong("softmax(x, dim=0) is wrong: use the `dim` argument "
                            "(max and sum along `dim`, keepdim=True)")
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


# --- a causal + padding mask -------------------------------------------------------------------

_PAD = 0
_IDS = torch.tensor([[0, 0, 3, 4, 5, 6],        # left-padded: two PADs first
                     [7, 8, 9, 2, 0, 0],        # right-padded
                     [1, 2, 3, 4, 5, 6]])       # no padding                           (B=3, T=6)


def _mask_parts(ids: torch.Tensor, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(causal (1, 1, T, T), real keys (B, 1, 1, T)), both bool with True = may attend."""
    T = ids.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool).tril()[None, None]
    return causal, (ids != pad_id)[:, None, None, :]


def _mask_check(fn: Callable) -> None:
    B, T = _IDS.shape
    out = fn(_IDS.clone(), _PAD)
    if not isinstance(out, torch.Tensor):
        raise ExerciseWrong(f"return a torch.Tensor, got {type(out).__name__}")
    if out.dtype != torch.bool:
        raise ExerciseWrong(f"the mask must be bool (True = may attend), got dtype {out.dtype}")
    if tuple(out.shape) != (B, 1, T, T):
        raise ExerciseWrong(f"for ids of shape (B={B}, T={T}) the mask must be (B, 1, T, T) = {(B, 1, T, T)} "
                            f"(one (Tq, Tk) matrix per sequence, broadcast over heads), got {tuple(out.shape)}")
    causal, keys = _mask_parts(_IDS, _PAD)
    ref = causal & keys                                                      # (B, 1, T, T)
    queries = (_IDS != _PAD)[:, None, :, None]                               # (B, 1, T, 1)
    if torch.equal(out, ref) or torch.equal(out, ref & queries):             # masking PAD queries too is fine
        return
    full = lambda m: m.expand(B, 1, T, T)                                    # noqa: E731
    mistakes = [
        (~ref, "the mask is inverted: True must mean 'may attend' (PyTorch's nn.MultiheadAttention uses the "
               "opposite convention)"),
        (full(causal), "padding keys are not masked: a query must not attend to a PAD key (ids == pad_id)"),
        (full(keys), "the causal part is missing: query i may only attend to keys j <= i"),
        (causal | keys, "the two masks are combined with 'or': a key is allowed only if BOTH allow it (use &)"),
        (full(causal.transpose(-2, -1)) & keys, "the causal part is transposed: query i (row) may attend to keys "
                                                "j <= i (columns), a lower-triangular matrix (tril, not triu)"),
        (causal & queries, "the padding is applied to the queries (rows): it must be applied to the keys "
                           "(the last axis), so that no query looks at a PAD token"),
    ]
    for wrong, message in mistakes:
        if torch.equal(out, full(wrong)):
            raise ExerciseWrong(message)
    b, i, j = (out != ref).nonzero()[0, [0, 2, 3]].tolist()
    raise ExerciseWrong(f"for sequence {b} ({_IDS[b].tolist()}, pad_id={_PAD}), query {i} and key {j}: "
                        f"got {bool(out[b, 0, i, j])}, expected {bool(ref[b, 0, i, j])}")


def check_causal_padding_mask(fn: Callable, quiet: bool = False) -> Verdict:
    """Check ``fn(ids (B, T), pad_id) -> (B, 1, T, T)`` bool: key j <= query i and key j not padding."""
    return run_checker("causal + padding mask", fn, _mask_check, quiet)


# --- grouped-query attention --------------------------------------------------------------------

def _gqa_inputs(H: int, G: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(3)
    B, T, d = 2, 5, 8
    return (torch.randn(B, H, T, d, generator=g, dtype=torch.float64),
            torch.randn(B, G, T, d, generator=g, dtype=torch.float64),
            torch.randn(B, G, T, d, generator=g, dtype=torch.float64))


def _gqa_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, tile: str = "interleave",
                   scale: float | None = None) -> torch.Tensor:
    r = q.shape[1] // k.shape[1]
    share = (lambda t: t.repeat_interleave(r, dim=1)) if tile == "interleave" else (lambda t: t.repeat(1, r, 1, 1))
    return scaled_dot_product_attention(q, share(k), share(v), scale=scale)[0]      # (B, H, T, d)


def _gqa_check(fn: Callable) -> None:
    for H, G in ((6, 2), (4, 4), (4, 1)):
        q, k, v = _gqa_inputs(H, G)
        what = f"grouped_query_attention(q (B, H={H}, T, d), k and v (B, G={G}, T, d))"
        out = _as_tensor(fn(q, k, v), what, tuple(q.shape))
        ref = _gqa_reference(q, k, v)
        if _close(out, ref):
            continue
        if _close(out, _gqa_reference(q, k, v, tile="repeat")):
            raise ExerciseWrong(f"with H={H}, G={G} query head h must share key/value head h // (H/G) (heads "
                                f"0..{H // G - 1} use group 0); `repeat` tiles the groups as 0, 1, 0, 1, ...: use "
                                f"repeat_interleave(H // G, dim=1)")
        if _close(out, _gqa_reference(q, k, v, scale=1.0)):
            raise ExerciseWrong("the scores are not scaled: divide q @ kᵀ by √d")
        if _close(out, _gqa_reference(q, k, v, scale=1.0 / q.shape[-1])):
            raise ExerciseWrong("the scores are divided by d; divide by √d")
        raise ExerciseWrong(f"{what} differs from softmax(q kᵀ/√d) v with shared key/value heads by up to "
                            f"{float((out.double() - ref).abs().max()):.3g}")


def check_grouped_query_attention(fn: Callable, quiet: bool = False) -> Verdict:
    """Check ``fn(q (B, H, T, d), k (B, G, T, d), v (B, G, T, d)) -> (B, H, T, d)``, G dividing H."""
    return run_checker("grouped-query attention", fn, _gqa_check, quiet)
