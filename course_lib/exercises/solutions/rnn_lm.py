"""Solutions to notebook 05's exercises."""

import torch


def rnn_cell(x_t: torch.Tensor, h_prev: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """h_t = tanh(W [h_{t-1}; x_t] + b): (B, E), (B, H), (H, H + E), (H,) -> (B, H)."""
    return torch.tanh(torch.cat([h_prev, x_t], dim=1) @ W.T + b)


def sample_with_temperature(logits: torch.Tensor, temperature: float, generator: torch.Generator) -> int:
    """Draw index i with probability softmax(logits / T)_i."""
    probs = torch.softmax(logits / temperature, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))
