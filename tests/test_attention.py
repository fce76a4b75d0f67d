"""course_lib.attention against references: torch's SDPA and MultiheadAttention, naive loops, hand values."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.attention import (LearnedPositions, MultiHeadAttention, attend, causal_mask, merge_heads,
                                  padding_mask, scaled_dot_product_attention, sinusoidal_positions, split_heads)


def _qkv(B=2, H=3, Tq=5, Tk=7, dk=8, dv=4, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, H, Tq, dk, generator=g, dtype=dtype), torch.randn(B, H, Tk, dk, generator=g, dtype=dtype),
            torch.randn(B, H, Tk, dv, generator=g, dtype=dtype))


def _random_mask(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    m = torch.rand(shape, generator=g) > 0.5
    m[..., 0] = True
    return m


def test_matches_naive_loop():
    q, k, v = _qkv(B=1, H=1, Tq=3, Tk=4, dk=2, dv=2)
    out, w = scaled_dot_product_attention(q, k, v)
    for i in range(3):
        s = [float(q[0, 0, i] @ k[0, 0, j]) / math.sqrt(2) for j in range(4)]
        e = [math.exp(x - max(s)) for x in s]
        a = [x / sum(e) for x in e]
        assert w[0, 0, i].tolist() == pytest.approx(a, abs=1e-12)
        expect = sum(a[j] * v[0, 0, j] for j in range(4))
        torch.testing.assert_close(out[0, 0, i], expect)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize("mask_kind", [None, "padding", "causal", "random"])
def test_reference_and_fast_path_equal_torch_sdpa(dtype, tol, mask_kind):
    T = 6
    q, k, v = _qkv(Tq=T, Tk=T, dtype=dtype)
    mask = {None: None, "padding": torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]]).bool()[:, None, None, :],
            "causal": causal_mask(T), "random": _random_mask((2, 3, T, T))}[mask_kind]
    expect = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out, w = scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(out, expect, atol=tol, rtol=tol)
    torch.testing.assert_close(attend(q, k, v, mask), expect, atol=tol, rtol=tol)
    torch.testing.assert_close(w.sum(-1), torch.ones_like(w.sum(-1)))
    if mask is not None:
        assert float(w.masked_fill(mask, 0.0).abs().max()) == 0.0


def test_three_dim_inputs_and_scale():
    q, k, v = _qkv()
    q3, k3, v3 = q[:, 0], k[:, 0], v[:, 0]
    out, w = scaled_dot_product_attention(q3, k3, v3, scale=0.3)
    assert out.shape == (2, 5, 4) and w.shape == (2, 5, 7)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q3, k3, v3, scale=0.3))
    torch.testing.assert_close(attend(q3, k3, v3, scale=0.3), out)


def test_is_causal_fast_path():
    q, k, v = _qkv(Tq=6, Tk=6)
    torch.testing.assert_close(attend(q, k, v, is_causal=True),
                               scaled_dot_product_attention(q, k, v, causal_mask(6))[0])
    with pytest.raises(ValueError, match="either is_causal"):
        attend(q, k, v, causal_mask(6), is_causal=True)


def test_fully_masked_rows_are_zero_not_nan():
    q, k, v = _qkv(Tq=4, Tk=4)
    mask = causal_mask(4).clone()
    mask[2] = False                                            # query 2 may attend to nothing
    q.requires_grad_(True)
    out, w = scaled_dot_product_attention(q, k, v, mask)
    assert torch.isfinite(out).all() and torch.isfinite(w).all()
    assert float(out[:, :, 2].detach().abs().max()) == 0.0 and float(w[:, :, 2].detach().abs().max()) == 0.0
    out.sum().backward()
    assert torch.isfinite(q.grad).all()
    fast = attend(q, k, v, mask)
    torch.testing.assert_close(fast, out)


def test_gradcheck_float64():
    q, k, v = (t[:1, :2, :3].clone().requires_grad_(True) for t in _qkv(Tq=3, Tk=3, dk=4, dv=3))
    mask = causal_mask(3)
    assert torch.autograd.gradcheck(lambda a, b, c: scaled_dot_product_attention(a, b, c, mask)[0], (q, k, v))
    assert torch.autograd.gradcheck(lambda a, b, c: scaled_dot_product_attention(a, b, c)[1], (q, k, v))
    assert torch.autograd.gradcheck(lambda a, b, c: attend(a, b, c, mask), (q, k, v))


def test_bad_inputs_raise_clear_errors():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="same last dim"):
        scaled_dot_product_attention(q, k[..., :4], v)
    with pytest.raises(ValueError, match="must match except"):
        scaled_dot_product_attention(q, k, v[:, :, :3])
    with pytest.raises(ValueError, match="floating-point"):
        scaled_dot_product_attention(q.long(), k, v)
    with pytest.raises(ValueError, match="share a dtype"):
        scaled_dot_product_attention(q.float(), k, v)
    with pytest.raises(ValueError, match="bool"):
        scaled_dot_product_attention(q, k, v, mask=torch.ones(5, 7))
    with pytest.raises(ValueError, match="does not broadcast"):
        attend(q, k, v, mask=torch.ones(5, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(B, H, T, d\)"):
        scaled_dot_product_attention(q[0, 0], k[0, 0], v[0, 0])
    with pytest.raises(ValueError, match="dropout_p"):
        attend(q, k, v, dropout_p=1.0)


def test_masks():
    assert causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    ids = torch.tensor([[5, 6, 0], [7, 0, 0]])
    m = padding_mask(ids, pad_id=0)
    assert m.shape == (2, 1, 1, 3) and m[:, 0, 0].tolist() == [[True, True, False], [True, False, False]]
    with pytest.raises(ValueError):
        causal_mask(0)
    with pytest.raises(ValueError, match="integer"):
        padding_mask(ids.float(), 0)


def test_split_merge_heads():
    x = torch.arange(2 * 3 * 8.0).view(2, 3, 8)
    s = split_heads(x, 4)
    assert s.shape == (2, 4, 3, 2)
    assert s[1, 2, 1].tolist() == x[1, 1, 4:6].tolist()        # head 2, time 1 = features 4..5 of time 1
    assert torch.equal(merge_heads(s), x)
    with pytest.raises(ValueError, match="divisible"):
        split_heads(x, 3)
    with pytest.raises(ValueError, match=r"\(B, H, T, d\)"):
        merge_heads(x)


def _torch_pair(D=16, H=4, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    ref = nn.MultiheadAttention(D, H, batch_first=True, dtype=dtype)
    nn.init.normal_(ref.in_proj_bias)
    nn.init.normal_(ref.out_proj.bias)
    ours = MultiHeadAttention(D, H).to(dtype).load_from_torch(ref)
    return ours, ref


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_multihead_equals_torch(dtype, tol):
    ours, ref = _torch_pair(dtype=dtype)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 5, 16, generator=g, dtype=dtype)
    ctx = torch.randn(2, 7, 16, generator=g, dtype=dtype)
    keep = torch.tensor([[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 1]]).bool()   # True = real token
    # self-attention, causal (torch: True = NOT allowed)
    exp, exp_w = ref(x, x, x, attn_mask=~causal_mask(5), average_attn_weights=False)
    out, w = ours(x, mask=causal_mask(5), need_weights=True)
    torch.testing.assert_close(out, exp, atol=tol, rtol=tol)
    torch.testing.assert_close(w, exp_w, atol=tol, rtol=tol)
    torch.testing.assert_close(ours(x, mask=causal_mask(5)), exp, atol=tol, rtol=tol)
    torch.testing.assert_close(ours(x, is_causal=True), exp, atol=tol, rtol=tol)
    # cross-attention with key padding
    exp, exp_w = ref(x, ctx, ctx, key_padding_mask=~keep, average_attn_weights=False)
    out, w = ours(x, context=ctx, mask=keep[:, None, None, :], need_weights=True)
    torch.testing.assert_close(out, exp, atol=tol, rtol=tol)
    torch.testing.assert_close(w, exp_w, atol=tol, rtol=tol)
    torch.testing.assert_close(ours(x, context=ctx, mask=keep[:, None, None, :]), exp, atol=tol, rtol=tol)


def test_multihead_permutation_equivariant_and_errors():
    ours, _ = _torch_pair()
    x = torch.randn(1, 6, 16, dtype=torch.float64)
    perm = torch.randperm(6)
    torch.testing.assert_close(ours(x[:, perm]), ours(x)[:, perm])
    with pytest.raises(ValueError, match="x must be"):
        ours(x[..., :8])
    with pytest.raises(ValueError, match="context must be"):
        ours(x, context=x[..., :8])
    with pytest.raises(ValueError, match="multiple"):
        MultiHeadAttention(10, 4)
    assert {n for n, _ in ours.named_children()} == {"q_proj", "k_proj", "v_proj", "out_proj"}


def test_multihead_dropout_only_in_training():
    mha = MultiHeadAttention(16, 4, dropout=0.5).double()
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    mha.eval()
    torch.testing.assert_close(mha(x), mha(x))
    torch.testing.assert_close(mha(x), mha(x, need_weights=True)[0])
    mha.train()
    assert not torch.allclose(mha(x), mha(x))


def test_sinusoidal_positions():
    pe = sinusoidal_positions(50, 6)
    assert pe.shape == (50, 6)
    assert pe[0].tolist() == [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    t, i = 7, 1
    assert float(pe[t, 2 * i]) == pytest.approx(math.sin(t / 10000 ** (2 * i / 6)), abs=1e-6)
    assert float(pe[t, 2 * i + 1]) == pytest.approx(math.cos(t / 10000 ** (2 * i / 6)), abs=1e-6)
    odd = sinusoidal_positions(4, 5)
    assert odd.shape == (4, 5)
    assert float(odd[3, 4]) == pytest.approx(math.sin(3 / 10000 ** (4 / 5)), abs=1e-6)
    with pytest.raises(ValueError):
        sinusoidal_positions(0, 4)


def test_learned_positions():
    pos = LearnedPositions(8, 4)
    x = torch.zeros(2, 5, 4)
    torch.testing.assert_close(pos(x), pos.weight[:5].expand(2, 5, 4))
    with pytest.raises(ValueError, match="max_len"):
        pos(torch.zeros(1, 9, 4))
    with pytest.raises(ValueError, match="expected x"):
        pos(torch.zeros(1, 3, 5))


def test_speed_benchmark_runs(tmp_path):
    import importlib.util
    import json
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "attention_speed.py"
    spec = importlib.util.spec_from_file_location("attention_speed", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "speed.json"
    assert bench.main(["--devices", "cpu", "--lengths", "16", "32", "--batch-sizes", "1", "--repeats", "1",
                       "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 8 and {r["path"] for r in rows} == {"scratch", "sdpa"}
    assert all(r["seconds"] > 0 for r in rows)


def test_both_paths_reject_a_one_dimensional_mask_and_a_fractional_length():
    q = k = v = torch.randn(2, 3, 5, 4)
    for fn in (scaled_dot_product_attention, attend):
        with pytest.raises(ValueError, match="at least 2 dims"):
            fn(q, k, v, torch.ones(5, dtype=torch.bool))
    with pytest.raises(ValueError, match="integer >= 1"):
        causal_mask(2.5)


@pytest.mark.parametrize("where", ["q", "k", "v"])
def test_both_paths_reject_nan_inputs_alike(where):
    """NaN at a masked key gave NaN in one path and a number in the other; both now refuse NaN/inf."""
    torch.manual_seed(0)
    qkv = {name: torch.randn(1, 3, 4) for name in "qkv"}
    qkv[where][0, 1, 0] = float("nan")
    mask = torch.tensor([[True, False, True], [True, True, True], [False, False, False]])
    for fn in (scaled_dot_product_attention, attend):
        for m in (None, mask):
            with pytest.raises(ValueError, match=f"{where} must be finite"):
                fn(qkv["q"], qkv["k"], qkv["v"], m)
    out = attend(qkv["q"], qkv["k"], qkv["v"], check_finite=False)       # layers skip it: the loop checks the loss
    assert out.shape == (1, 3, 4)
