"""course_lib.flops: equation (1) against PyTorch's own FLOP counter, peaks and MFU."""

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from course_lib import flops
from course_lib.models.mlm import MaskedLM
from course_lib.models.transformer import TransformerConfig, TransformerLM


def counted_train_flops(model, ids, **kwargs) -> float:
    """FLOPs of one forward + backward, counted by torch (math attention, so Q Kᵀ and A V are matmuls)."""
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(ids, **kwargs).float().pow(2).mean().backward()
    return counter.get_total_flops()


@pytest.mark.parametrize("kind", ["causal_lm", "masked_lm"])
@pytest.mark.parametrize("tied", [True, False])
def test_formula_equals_torch_flop_counter(kind, tied, one_thread):
    torch.manual_seed(0)
    cfg = TransformerConfig(vocab_size=67, max_len=24, d_model=32, n_heads=4, n_layers=3, tie_embeddings=tied)
    model = TransformerLM(cfg) if kind == "causal_lm" else MaskedLM(cfg)
    ids = torch.randint(0, 67, (5, 24))
    assert counted_train_flops(model, ids) / ids.numel() == pytest.approx(flops.model_flops_per_token(model, 24),
                                                                         rel=1e-12)


def test_masked_head_fraction_and_each_term(one_thread):
    torch.manual_seed(0)
    cfg = TransformerConfig(vocab_size=50, max_len=16, d_model=16, n_heads=2, n_layers=2)
    model = MaskedLM(cfg)
    ids = torch.randint(0, 50, (4, 16))
    positions = torch.zeros(4, 16, dtype=torch.bool)
    positions[:, ::4] = True                                        # the head runs on 1/4 of the tokens
    expected = flops.model_flops_per_token(model, 16, head_fraction=0.25)
    assert counted_train_flops(model, ids, positions=positions) / ids.numel() == pytest.approx(expected, rel=1e-12)
    # the terms by hand: body = 4 D^2 attention + 2 * 4 D^2 MLP per layer; head = D^2 transform + D V decoder
    D, V, L, T = 16, 50, 2, 16
    assert flops.linear_weights(model.encoder) == L * (4 * D * D + 8 * D * D)
    assert flops.linear_weights(model.head) == D * D + D * V              # tied decoder counted once
    assert expected == 6 * (L * 12 * D * D + 0.25 * (D * D + D * V)) + 12 * L * T * D


def test_wrong_formulas_disagree_with_the_counter(one_thread):
    """The check can fail: dropping the attention term or the factor 3 for backward is caught."""
    torch.manual_seed(0)
    cfg = TransformerConfig(vocab_size=67, max_len=24, d_model=32, n_heads=4, n_layers=2)
    model = TransformerLM(cfg)
    ids = torch.randint(0, 67, (2, 24))
    counted = counted_train_flops(model, ids) / ids.numel()
    n = flops.linear_weights(model.encoder) + flops.linear_weights(model.head)
    assert counted != pytest.approx(6 * n, rel=1e-3)                 # no attention term
    assert counted != pytest.approx(2 * n + 4 * 2 * 24 * 32, rel=1e-3)   # forward only


def test_peaks_and_mfu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 PCIe")
    assert flops.peak_flops("cuda")[0] == 756.5e12
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    assert flops.peak_flops("cuda")[0] == 989.4e12
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    peak, why = flops.peak_flops("cuda")
    assert peak is None and "Tesla T4" in why
    cpu_peak, source = flops.peak_flops("cpu")
    assert 1e8 < cpu_peak < 1e14 and "measured" in source
    assert flops.mfu(1e6, 1e4, 1e11) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="peak"):
        flops.mfu(1e6, 1e4, 0.0)
    with pytest.raises(TypeError, match="encoder"):
        flops.model_flops_per_token(torch.nn.Linear(2, 2), 8)
