"""course_lib.models.transformer: shapes, causality, padding, attention maps, tying, overfitting one batch."""

import pytest
import torch
import torch.nn.functional as F

from course_lib.models.transformer import TransformerBlock, TransformerConfig, TransformerEncoder, TransformerLM

CFG = TransformerConfig(vocab_size=20, max_len=12, d_model=32, n_heads=4, n_layers=2)


def _ids(B=3, T=10, seed=0):
    return torch.randint(1, 20, (B, T), generator=torch.Generator().manual_seed(seed))


def test_config():
    assert CFG.ff_dim == 128 and TransformerConfig(5, 4, d_model=8, n_heads=2, d_ff=10).ff_dim == 10
    with pytest.raises(ValueError, match="multiple"):
        TransformerConfig(5, 4, d_model=10, n_heads=4)
    with pytest.raises(ValueError, match="dropout"):
        TransformerConfig(5, 4, dropout=1.0)


def test_encoder_shapes_and_bidirectional():
    torch.manual_seed(0)
    enc = TransformerEncoder(CFG).eval()
    ids = _ids()
    h = enc(ids)
    assert h.shape == (3, 10, 32)
    ids2 = ids.clone()
    ids2[:, -1] = (ids2[:, -1] % 19) + 1
    assert not torch.allclose(enc(ids2)[:, 0], h[:, 0])            # sees the future


def test_causal_encoder_ignores_future():
    torch.manual_seed(0)
    enc = TransformerEncoder(TransformerConfig(**{**CFG.__dict__, "causal": True})).eval()
    ids = _ids()
    ids2 = ids.clone()
    ids2[:, 6:] = (ids2[:, 6:] % 19) + 1
    torch.testing.assert_close(enc(ids2)[:, :6], enc(ids)[:, :6])
    assert not torch.allclose(enc(ids2)[:, 6:], enc(ids)[:, 6:])
    pad = torch.ones(3, 10, dtype=torch.bool)                       # all real: same as no pad mask
    torch.testing.assert_close(enc(ids, pad), enc(ids))
    maps = enc.attention_maps(ids)
    assert len(maps) == 2 and maps[0].shape == (3, 4, 10, 10)
    assert float(maps[0].triu(1).abs().max()) == 0.0


def test_padding_is_ignored():
    torch.manual_seed(0)
    enc = TransformerEncoder(CFG).eval()
    ids = _ids()
    pad = torch.ones(3, 10, dtype=torch.bool)
    pad[0, 7:] = False
    ids2 = ids.clone()
    ids2[0, 7:] = 0                                                 # change what sits in the padding
    torch.testing.assert_close(enc(ids2, pad)[0, :7], enc(ids, pad)[0, :7])
    maps = enc.attention_maps(ids, pad)
    for w in maps:
        assert float(w[0, :, :, 7:].abs().max()) == 0.0
        torch.testing.assert_close(w.sum(-1), torch.ones(3, 4, 10))


def test_block_weights_path_equals_fast_path():
    torch.manual_seed(0)
    block = TransformerBlock(CFG).double().eval()
    x = torch.randn(2, 6, 32, dtype=torch.float64)
    out, w = block(x, need_weights=True, is_causal=True)
    torch.testing.assert_close(out, block(x, is_causal=True))
    assert w.shape == (2, 4, 6, 6)


def test_input_validation():
    enc = TransformerEncoder(CFG)
    with pytest.raises(ValueError, match="int64"):
        enc(_ids().float())
    with pytest.raises(ValueError, match="max_len"):
        enc(torch.ones(1, 13, dtype=torch.long))
    with pytest.raises(ValueError, match="token ids"):
        enc(torch.full((1, 4), 20, dtype=torch.long))
    with pytest.raises(ValueError, match="token ids"):
        enc(torch.full((1, 4), -1, dtype=torch.long))
    with pytest.raises(ValueError, match="pad_mask"):
        enc(_ids(), torch.ones(3, 10))


def test_id_range_check_makes_no_device_sync_off_the_cpu_or_under_compile():
    # the range check reads ids back to Python (int(ids.min())): a device sync and a graph break
    # on every forward. On the meta device any such read-back raises, so a forward that runs there
    # with out-of-range ids proves the check (and any other read-back) is skipped off the CPU.
    meta = TransformerEncoder(CFG).to("meta")
    h = meta(torch.full((2, 4), 20, dtype=torch.long, device="meta"))
    assert h.shape == (2, 4, 32) and h.device.type == "meta"
    # under torch.compile the check is skipped even for CPU ids: fullgraph=True fails on a graph break
    torch.manual_seed(0)
    enc = TransformerEncoder(CFG).eval()
    ids = _ids()
    torch.testing.assert_close(torch.compile(enc, backend="eager", fullgraph=True)(ids), enc(ids))


def test_lm_tied_causal_and_overfits_one_batch(one_thread):
    torch.manual_seed(0)
    lm = TransformerLM(CFG)                                         # causal forced on
    assert lm.cfg.causal and lm.head.weight is lm.encoder.tok_emb.weight
    untied = TransformerLM(TransformerConfig(**{**CFG.__dict__, "tie_embeddings": False}))
    assert untied.head.weight is not untied.encoder.tok_emb.weight
    ids = _ids(B=4, T=12)
    assert lm(ids).shape == (4, 12, 20)
    opt = torch.optim.AdamW(lm.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        logits = lm(ids[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, 20), ids[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 2.5 and losses[-1] < 0.5, losses[::10]      # memorises 44 next tokens
