"""Notebook 01 exercise checkers: the solution passes; each usual mistake is caught and named."""

import math

import pytest
import torch

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


# --- causal + padding mask -------------------------------------------------------------------

def _causal(T):
    return torch.ones(T, T, dtype=torch.bool).tril()


def _only_causal(ids, pad_id):
    return _causal(ids.shape[1]).expand(ids.shape[0], 1, -1, -1)


def _only_padding(ids, pad_id):
    T = ids.shape[1]
    return (ids != pad_id)[:, None, None, :].expand(-1, 1, T, T)


def _or_combined(ids, pad_id):
    return _causal(ids.shape[1]) | (ids != pad_id)[:, None, None, :]


def _inverted(ids, pad_id):
    return ~sol.causal_padding_mask(ids, pad_id)


def _upper_triangular(ids, pad_id):
    return _causal(ids.shape[1]).T & (ids != pad_id)[:, None, None, :]


def _pads_queries(ids, pad_id):
    return _causal(ids.shape[1]) & (ids != pad_id)[:, None, :, None]


def _pads_queries_and_keys(ids, pad_id):
    return sol.causal_padding_mask(ids, pad_id) & (ids != pad_id)[:, None, :, None]


def _no_head_axis(ids, pad_id):
    return sol.causal_padding_mask(ids, pad_id)[:, 0]


def _float_mask(ids, pad_id):
    return sol.causal_padding_mask(ids, pad_id).float()


def _one_wrong_entry(ids, pad_id):
    m = sol.causal_padding_mask(ids, pad_id).clone()
    m[2, 0, 5, 5] = False
    return m


def test_mask_checker_accepts_solution_and_query_padding():
    assert ex.check_causal_padding_mask(sol.causal_padding_mask, quiet=True).correct
    assert ex.check_causal_padding_mask(_pads_queries_and_keys, quiet=True).correct   # PAD query rows may be masked
    assert ex.check_causal_padding_mask(_stub, quiet=True).status == "not attempted"


def test_mask_solution_agrees_with_course_lib():
    from course_lib.attention import causal_mask, padding_mask
    ids = torch.tensor([[0, 0, 3, 4], [5, 6, 0, 0]])
    assert torch.equal(sol.causal_padding_mask(ids, 0), causal_mask(4) & padding_mask(ids, 0))


@pytest.mark.parametrize("wrong,words", [
    (_only_causal, "padding keys are not masked"), (_only_padding, "causal part is missing"),
    (_or_combined, "combined with 'or'"), (_inverted, "inverted"), (_upper_triangular, "transposed"),
    (_pads_queries, "applied to the queries"), (_no_head_axis, "must be (B, 1, T, T)"),
    (_float_mask, "must be bool"), (_one_wrong_entry, "sequence 2")])
def test_mask_checker_catches(wrong, words):
    v = ex.check_causal_padding_mask(wrong, quiet=True)
    assert v.status == "wrong" and words in v.message, v.message


# --- grouped-query attention ------------------------------------------------------------------

def _gqa_with(q, k, v, share, scale):
    r = q.shape[1] // k.shape[1]
    k, v = share(k, r), share(v, r)
    return ((q @ k.transpose(-2, -1)) * scale).softmax(-1) @ v


def _gqa_repeat(q, k, v):
    return _gqa_with(q, k, v, lambda t, r: t.repeat(1, r, 1, 1), 1 / math.sqrt(q.shape[-1]))


def _gqa_unscaled(q, k, v):
    return _gqa_with(q, k, v, lambda t, r: t.repeat_interleave(r, 1), 1.0)


def _gqa_over_d(q, k, v):
    return _gqa_with(q, k, v, lambda t, r: t.repeat_interleave(r, 1), 1 / q.shape[-1])


def _gqa_softmax_over_queries(q, k, v):
    r = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(r, 1), v.repeat_interleave(r, 1)
    return (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(-2) @ v


def _gqa_group_means(q, k, v):
    """Averages the queries of each group: (B, G, T, d), the wrong shape."""
    B, H, T, d = q.shape
    qg = q.view(B, k.shape[1], H // k.shape[1], T, d).mean(2)
    return (qg @ k.transpose(-2, -1) / math.sqrt(d)).softmax(-1) @ v


def test_gqa_checker_accepts_solution():
    assert ex.check_grouped_query_attention(sol.grouped_query_attention, quiet=True).correct
    assert ex.check_grouped_query_attention(_stub, quiet=True).status == "not attempted"


def test_gqa_solution_is_multi_head_attention_when_every_head_has_its_keys():
    from course_lib.attention import scaled_dot_product_attention
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 4, 5, 8, generator=g, dtype=torch.float64) for _ in range(3))
    torch.testing.assert_close(sol.grouped_query_attention(q, k, v), scaled_dot_product_attention(q, k, v)[0])


@pytest.mark.parametrize("wrong,words", [
    (_gqa_repeat, "repeat_interleave"), (_gqa_unscaled, "not scaled"), (_gqa_over_d, "divided by d;"),
    (_gqa_softmax_over_queries, "differs from softmax"), (_gqa_group_means, "should have shape")])
def test_gqa_checker_catches(wrong, words):
    v = ex.check_grouped_query_attention(wrong, quiet=True)
    assert v.status == "wrong" and words in v.message, v.message
