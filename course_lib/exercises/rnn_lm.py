"""Checkers for notebook 05: the vanilla RNN cell and temperature sampling.

* ``rnn_cell(x_t (B, E), h_prev (B, H), W (H, H + E), b (H,)) -> h_t (B, H)`` with
  h_t = tanh(W [h_{t-1}; x_t] + b) (Elman 1990).
* ``sample_with_temperature(logits (V,), temperature, generator) -> int`` draws i with
  probability softmax(logits / T)_i.
"""

from __future__ import annotations

from typing import Callable

import torch

from .base import ExerciseWrong, Verdict, run_checker

__all__ = ["check_rnn_cell", "check_temperature_sampling"]


def _check_rnn_cell(rnn_cell: Callable) -> None:
    g = torch.Generator().manual_seed(0)
    B, E, H = 3, 4, 5
    x, h = torch.randn(B, E, generator=g, dtype=torch.float64), torch.randn(B, H, generator=g, dtype=torch.float64)
    W, b = torch.randn(H, H + E, generator=g, dtype=torch.float64), torch.randn(H, generator=g, dtype=torch.float64)
    out = rnn_cell(x, h, W, b)
    if not isinstance(out, torch.Tensor) or out.shape != (B, H):
        raise ExerciseWrong(f"h_t should be a (B, H) = {(B, H)} tensor, got "
                            f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")
    expected = torch.tanh(torch.cat([h, x], dim=1) @ W.T + b)
    if torch.allclose(out, expected, atol=1e-10):
        return
    if torch.allclose(out, torch.cat([h, x], dim=1) @ W.T + b, atol=1e-10):
        raise ExerciseWrong("the tanh non-linearity is missing")
    if torch.allclose(out, torch.tanh(torch.cat([x, h], dim=1) @ W.T + b), atol=1e-10):
        raise ExerciseWrong("concatenate in the order [h_{t-1}; x_t]: the first H columns of W act on h")
    if torch.allclose(out, torch.tanh(torch.cat([h, x], dim=1) @ W.T), atol=1e-10):
        raise ExerciseWrong("the bias b is missing")
    if torch.allclose(out, torch.tanh(torch.cat([h, x], dim=1) @ W.T + b) + h, atol=1e-10):
        raise ExerciseWrong("a vanilla RNN has no residual: h_t = tanh(...), not h_{t-1} + tanh(...)")
    raise ExerciseWrong(f"h_t differs from tanh(W [h; x] + b) by up to {float((out - expected).abs().max()):.3g}")


def check_rnn_cell(rnn_cell: Callable) -> Verdict:
    """Check ``rnn_cell(x_t, h_prev, W, b) -> h_t``."""
    return run_checker("rnn_cell", rnn_cell, _check_rnn_cell)


def _check_sampling(sample: Callable) -> None:
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0])
    for temperature in (0.5, 1.0, 2.0):
        expected = torch.softmax(logits / temperature, 0)
        g = torch.Generator().manual_seed(123)
        draws = [sample(logits, temperature, g) for _ in range(4000)]
        if not all(isinstance(d, int) or (isinstance(d, torch.Tensor) and d.numel() == 1) for d in draws[:5]):
            raise ExerciseWrong("return one index (an int) per call")
        counts = torch.bincount(torch.tensor([int(d) for d in draws]), minlength=4)[:4].double()
        freq = counts / counts.sum()
        # 4000 draws: the standard error of a frequency is <= 0.008, so 0.04 is five of them
        if (freq - expected).abs().max() > 0.04:
            if counts[0] == counts.sum():
                raise ExerciseWrong(f"at T={temperature} you always pick index 0: that is greedy argmax, "
                                    "not sampling (use torch.multinomial with the generator)")
            flipped = torch.softmax(logits * temperature, 0)
            if (freq - flipped).abs().max() < 0.04:
                raise ExerciseWrong("divide the logits by T (you multiplied): T > 1 must flatten the distribution")
            plain = torch.softmax(logits, 0)
            if temperature != 1.0 and (freq - plain).abs().max() < 0.04:
                raise ExerciseWrong(f"at T={temperature} your frequencies match T=1: the temperature is ignored")
            raise ExerciseWrong(f"at T={temperature} frequencies {[round(float(f), 3) for f in freq]} differ from "
                                f"softmax(logits/T) = {[round(float(p), 3) for p in expected]}")


def check_temperature_sampling(sample: Callable) -> Verdict:
    """Check ``sample_with_temperature(logits (V,), temperature, generator) -> int`` statistically."""
    return run_checker("sample_with_temperature", sample, _check_sampling)
