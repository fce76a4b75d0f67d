"""Notebook 01 exercise checkers: the solution passes; each usual mistake is caught and named."""

import math

import pytest

from course_lib.exercises import attention as ex
from course_lib.exercises.solutions import attention as sol


def _stub(*args, **kwargs):
    raise NotImplementedError


# --- stable softmax ---------------------------------------------------------------------------

def _naive_softmax(x, dim=-1):
    e = x.exp()
    return e / e.sum(dim=dim, keepdim=True)


def _wrong_axis_softmax(x, dim=-1):
    return sol.stable_softmax(x, dim=0)


def _ignores_dim_softmax(x, dim=-1):
    return sol.stable_softmax(x, dim=-1)


def _exp_only(x, dim=-1):
    return (x - x.max(dim=dim, keepdim=True).values).exp()


def test_softmax_checker():
    assert ex.check_stable_softmax(sol.stable_softmax, quiet=True).correct
    assert ex.check_stable_softmax(_stub, quiet=True).status == "not attempted"
    for wrong, words in [(_naive_softmax, "overflow"), (_wrong_axis_softmax, "dim 0"),
                         (_ignores_dim_softmax, "`dim` argument"), (_exp_only, "sums along the last dim")]:
        v = ex.check_stable_softmax(wrong, quiet=True)
        assert v.status == "wrong" and words in v.message, (wrong.__name__, v.message)


# --- masked attention -------------------------------------------------------------------------

def _scores(q, k):
    return q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])


def _no_scaling(q, k, v, mask):
    w = (q @ k.transpose(-2, -1)).masked_fill(~mask, float("-inf")).softmax(-1)
    return w @ v, w


def _softmax_over_queries(q, k, v, mask):
    w = _scores(q, k).masked_fill(~mask, float("-inf")).softmax(-2).nan_to_num(0.0)
    return w @ v, w


def _mask_after_softmax(q, k, v, mask):
    w = _scores(q, k).softmax(-1) * mask
    return w @ v, w


def _mask_ignored(q, k, v, mask):
    w = _scores(q, k).softmax(-1)
    return w @ v, w


def _mask_inverted(q, k, v, mask):
    w = _scores(q, k).masked_fill(mask, float("-inf")).softmax(-1)
    return w @ v, w


def _query_independent(q, k, v, mask):
    """The 'self-normalised' e_j·e_j / Σ e_k·e_k weights: the same for every query."""
    s = (k * k).sum(-1, keepdim=True).transpose(-2, -1).expand(*q.shape[:-1], k.shape[-2])
    w = (s * mask) / (s * mask).sum(-1, keepdim=True)
    return w @ v, w


def _wrong_output(q, k, v, mask):
    out, w = sol.masked_attention(q, k, v, mask)
    return w @ v.flip(-2), w


def _returns_only_out(q, k, v, mask):
    return sol.masked_attention(q, k, v, mask)[0]


@pytest.mark.parametrize("wrong,words", [
    (_no_scaling, "not scaled"), (_softmax_over_queries, "over the queries"),
    (_mask_after_softmax, "after the softmax"), (_mask_ignored, "ignored"), (_mask_inverted, "inverted"),
    (_query_independent, "do not depend on the query"), (_wrong_output, "not weights @ v"),
    (_returns_only_out, "(out, weights)")])
def test_attention_checker_catches(wrong, words):
    v = ex.check_masked_attention(wrong, quiet=True)
    assert v.status == "wrong" and words in v.message, v.message


def test_attention_checker_accepts_solution_and_library():
    from course_lib.attention import scaled_dot_product_attention
    assert ex.check_masked_attention(sol.masked_attention, quiet=True).correct
    assert ex.check_masked_attention(scaled_dot_product_attention, quiet=True).correct
    assert ex.check_masked_attention(_stub, quiet=True).status == "not attempted"


# --- split / merge heads ----------------------------------------------------------------------

def _split_no_transpose(x, H):
    B, T, D = x.shape
    return x.reshape(B, H, T, D // H)


def _merge_no_transpose(x):
    B, H, T, d = x.shape
    return x.reshape(B, T, H * d)


def _split_wrong_shape(x, H):
    B, T, D = x.shape
    return x.view(B, T, H, D // H)


def test_split_merge_checker():
    assert ex.check_split_merge(sol.split_heads, sol.merge_heads, quiet=True).correct
    assert ex.check_split_merge(_stub, _stub, quiet=True).status == "not attempted"
    assert ex.check_split_merge(sol.split_heads, _stub, quiet=True).status == "not attempted"
    cases = [((_split_no_transpose, sol.merge_heads), "straight to (B, H, T, D/H)"),
             ((sol.split_heads, _merge_no_transpose), "transpose(1, 2) back"),
             ((_split_wrong_shape, sol.merge_heads), "should have shape (2, 4, 3, 2)")]
    for (split, merge), words in cases:
        v = ex.check_split_merge(split, merge, quiet=True)
        assert v.status == "wrong" and words in v.message, v.message
