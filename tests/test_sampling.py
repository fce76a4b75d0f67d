"""Sampling from a language model: temperature, top-k, generation."""

from __future__ import annotations

import pytest
import torch

from course_lib.models.rnn import CharRNN, CharRNNConfig
from course_lib.models.transformer import TransformerConfig, TransformerLM
from course_lib.sampling import generate, sample_next, temperature_probs


def test_temperature_probs_formula_and_limits():
    z = torch.tensor([[2.0, 1.0, 0.0]])
    torch.testing.assert_close(temperature_probs(z, 0.5), torch.softmax(z / 0.5, -1))
    assert float(temperature_probs(z, 1e-3)[0, 0]) > 0.999                      # T -> 0: argmax
    flat = temperature_probs(z, 1e3)[0]
    assert float(flat.max() - flat.min()) < 1e-2                                # T -> inf: uniform
    top2 = temperature_probs(z, 1.0, top_k=2)[0]
    assert float(top2[2]) == 0.0 and float(top2.sum()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="temperature"):
        temperature_probs(z, 0.0)
    with pytest.raises(ValueError, match="top_k"):
        temperature_probs(z, 1.0, top_k=0)


def test_sample_next_frequencies():
    logits = torch.tensor([[1.0, 0.0, -1.0]]).repeat(20000, 1)
    draws = sample_next(logits, 1.0, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=3).double() / len(draws)
    assert torch.allclose(freq, torch.softmax(torch.tensor([1.0, 0.0, -1.0]), 0).double(), atol=0.015)


@pytest.mark.parametrize("model", [
    CharRNN(CharRNNConfig(vocab_size=7, hidden_dim=8, layers=1)),
    TransformerLM(TransformerConfig(vocab_size=7, max_len=6, d_model=8, n_heads=2, n_layers=1)),
])
def test_generate_is_deterministic_for_a_seed(model):
    prompt = torch.tensor([1, 2, 3])
    a, b = generate(model, prompt, 10, seed=5), generate(model, prompt, 10, seed=5)
    assert a.shape == (13,) and torch.equal(a, b) and torch.equal(a[:3], prompt)
    assert int(a.max()) < 7
    greedy = generate(model, prompt, 10, top_k=1, seed=1)
    assert torch.equal(greedy, generate(model, prompt, 10, top_k=1, seed=2))  # top-1 ignores the seed
    with pytest.raises(ValueError, match="prompt"):
        generate(model, torch.tensor([]), 3)
