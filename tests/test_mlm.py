"""MLM objective (masking, masked-only loss) and the heads on the Transformer encoder."""

import pytest
import torch

from course_lib.models.mlm import MLMHead, MaskedLM, SequenceClassifier, pool_hidden
from course_lib.models.transformer import TransformerConfig, TransformerEncoder
from course_lib.objectives.mlm import IGNORE_INDEX, mask_tokens, masked_lm_loss, select_masked

V = 200


pytestmark = pytest.mark.usefixtures("one_thread")   # every test here: tiny models, one thread


def _ids(B=300, T=100, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, V, (B, T), generator=g)
    end = min(60, T - 4)
    ids[:, 0], ids[:, end] = 2, 3
    ids[:, end + 1:] = 0                                              # padding
    return ids


def test_mask_rates_and_specials():
    ids = _ids()
    inputs, targets = mask_tokens(ids, V, generator=torch.Generator().manual_seed(1))
    sel = targets != IGNORE_INDEX
    real = ids >= 5
    assert not (sel & ~real).any()                                     # never [PAD] [CLS] [SEP]
    assert torch.equal(inputs[~sel], ids[~sel]) and torch.equal(targets[sel], ids[sel])
    n_real, n_sel = int(real.sum()), int(sel.sum())                    # 17,700 real, ~2,650 selected
    assert abs(n_sel / n_real - 0.15) < 5 * (0.15 * 0.85 / n_real) ** 0.5
    x = inputs[sel]
    frac_mask = float((x == 4).float().mean())
    frac_same = float((x == ids[sel]).float().mean())
    sd = (0.1 * 0.9 / n_sel) ** 0.5
    assert abs(frac_mask - 0.8) < 5 * (0.16 / n_sel) ** 0.5
    assert abs(frac_same - 0.1 - 0.1 / (V - 5)) < 5 * sd
    assert abs(1 - frac_mask - frac_same - 0.1) < 5 * sd
    assert int(x.min()) >= 4                                           # random tokens are never special


def test_mask_options_and_determinism():
    ids = _ids(50, 80)
    a = mask_tokens(ids, V, generator=torch.Generator().manual_seed(3))
    b = mask_tokens(ids, V, generator=torch.Generator().manual_seed(3))
    c = mask_tokens(ids, V, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and not torch.equal(a[1], c[1])
    inputs, targets = mask_tokens(ids, V, mask_frac=1.0, random_frac=0.0, generator=torch.Generator().manual_seed(0))
    assert bool((inputs[targets != IGNORE_INDEX] == 4).all())
    inputs, targets = mask_tokens(ids, V, select_prob=0.0)
    assert torch.equal(inputs, ids) and bool((targets == IGNORE_INDEX).all())


@pytest.mark.parametrize("kwargs, match", [
    (dict(ids=torch.zeros(2, 3)), "int64"), (dict(ids=torch.zeros(3, dtype=torch.long)), r"\(B, T\)"),
    (dict(select_prob=1.5), "select_prob"), (dict(mask_frac=0.95, random_frac=0.1), "mask_frac"),
    (dict(ids=torch.full((2, 3), V, dtype=torch.long)), r"ids must be in"), (dict(special_ids=(0, 1)), "special_ids"),
    (dict(select_prob=float("nan")), "select_prob"), (dict(mask_frac=float("nan")), "mask_frac"),
])
def test_mask_rejects_bad_input(kwargs, match):
    args = dict(ids=_ids(2, 70), vocab_size=V)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        mask_tokens(**args)


def test_masked_loss_matches_naive_loop_and_gathered_form():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, 11, generator=g)
    targets = torch.randint(0, 11, (3, 7), generator=g).masked_fill(torch.rand(3, 7, generator=g) < 0.6, IGNORE_INDEX)
    naive, n = 0.0, 0
    for b in range(3):
        for t in range(7):
            if targets[b, t] != IGNORE_INDEX:
                naive += -float(logits[b, t].log_softmax(-1)[targets[b, t]])
                n += 1
    torch.testing.assert_close(masked_lm_loss(logits, targets), torch.tensor(naive / n))
    h, y = select_masked(logits, targets)
    assert h.shape == (n, 11) and y.shape == (n,)
    torch.testing.assert_close(masked_lm_loss(h, y), torch.tensor(naive / n))


def test_masked_loss_empty_and_errors():
    logits = torch.randn(2, 3, 5, requires_grad=True)
    loss = masked_lm_loss(logits, torch.full((2, 3), IGNORE_INDEX))
    assert float(loss.detach()) == 0.0 and loss.requires_grad
    with pytest.raises(ValueError, match="expected logits"):
        masked_lm_loss(logits, torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="int64"):
        masked_lm_loss(logits, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="hidden"):
        select_masked(torch.randn(2, 3), torch.zeros(2, 3, dtype=torch.long))


def _cfg(**kw):
    return TransformerConfig(**{**dict(vocab_size=V, max_len=16, d_model=32, n_heads=4, n_layers=2), **kw})


def test_masked_head_equals_full_head_at_positions_and_ties_weights():
    torch.manual_seed(0)
    model = MaskedLM(_cfg()).eval()
    ids = _ids(4, 16)
    pos = torch.rand(4, 16) < 0.3
    full = model(ids, ids != 0)                                        # (B, T, V)
    assert full.shape == (4, 16, V)
    torch.testing.assert_close(model(ids, ids != 0, pos), full[pos])
    assert model.head.decoder.weight is model.encoder.tok_emb.weight
    untied = MaskedLM(_cfg(tie_embeddings=False))
    assert untied.head.decoder.weight is not untied.encoder.tok_emb.weight
    with pytest.raises(ValueError, match="positions"):
        model(ids, None, pos.long())
    with pytest.raises(ValueError, match="causal"):
        MaskedLM(_cfg(causal=True))
    with pytest.raises(ValueError, match="tied weight"):
        MLMHead(32, V + 1, model.encoder.tok_emb.weight)


def test_classifier_shapes_pooling_and_padding_invariance():
    torch.manual_seed(0)
    enc = TransformerEncoder(_cfg())
    ids = _ids(3, 16)
    ids[:, 10:] = 0
    for pool in ("cls", "mean"):
        clf = SequenceClassifier(enc, 3, pool=pool).eval()
        out = clf(ids, ids != 0)
        assert out.shape == (3, 3)
        short = clf(ids[:, :10], ids[:, :10] != 0)                     # dropping the padding changes nothing
        torch.testing.assert_close(out, short, atol=1e-5, rtol=1e-5)
    h = torch.randn(2, 4, 8)
    m = torch.tensor([[True, True, False, False], [True, True, True, True]])
    torch.testing.assert_close(pool_hidden(h, m, "mean")[0], h[0, :2].mean(0))
    torch.testing.assert_close(pool_hidden(h, m, "cls"), h[:, 0])
    with pytest.raises(ValueError, match="pool"):
        SequenceClassifier(enc, 2, pool="max")
    with pytest.raises(ValueError, match="n_classes"):
        SequenceClassifier(enc, 1)


def test_overfits_one_batch():
    torch.manual_seed(0)
    model = MaskedLM(_cfg(dropout=0.0))
    ids = _ids(8, 16)
    inputs, targets = mask_tokens(ids, V, select_prob=0.5, generator=torch.Generator().manual_seed(0))
    pos = targets != IGNORE_INDEX
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        loss = masked_lm_loss(model(inputs, ids != 0, pos), targets[pos])
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert first > 4.5 and float(loss.detach()) < 0.1, (first, float(loss.detach()))   # measured: 5.3 -> ~0.01
