"""Sampling text from a language model: temperature and top-k.

p_i(T) = exp(z_i / T) / sum_j exp(z_j / T): T < 1 sharpens the distribution, T > 1 flattens
it, T -> 0 approaches greedy argmax. Top-k keeps the k largest logits and renormalises.
Works with recurrent models (state carried) and causal Transformers (context window).
Used by notebook 05.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["temperature_probs", "sample_next", "generate"]


def temperature_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None) -> torch.Tensor:
    """(..., V) logits -> (..., V) probabilities softmax(z / T), restricted to the top k if given."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 (use top_k=1 for greedy decoding), got {temperature}")
    z = logits.float() / temperature
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        kth = z.topk(min(top_k, z.shape[-1]), dim=-1).values[..., -1:]     # (..., 1)
        z = z.masked_fill(z < kth, float("-inf"))
    return torch.softmax(z, dim=-1)


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, V) logits -> (B,) sampled ids."""
    probs = temperature_probs(logits, temperature, top_k)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def generate(model: nn.Module, prompt: torch.Tensor, length: int, temperature: float = 1.0,
             top_k: int | None = None, seed: int = 0) -> torch.Tensor:
    """Continue ``prompt`` (T0,) int64 by ``length`` sampled ids; returns (T0 + length,).

    A recurrent model (forward(ids, state) -> (logits, state)) reads the prompt once and
    then one id per step; any other model is re-run on its last ``cfg.max_len`` ids.
    """
    if prompt.ndim != 1 or prompt.dtype != torch.long or len(prompt) == 0:
        raise ValueError(f"prompt must be a non-empty 1-D int64 tensor, got {prompt.dtype} {tuple(prompt.shape)}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device="cpu").manual_seed(seed)
    out = prompt.tolist()
    recurrent = hasattr(model, "rnn")
    state, window = None, getattr(getattr(model, "cfg", None), "max_len", None)
    inputs = prompt.to(device)[None]                                        # (1, T0)
    for _ in range(length):
        if recurrent:
            logits, state = model(inputs, state)                            # (1, t, V)
        else:
            context = torch.tensor(out[-window:] if window else out, device=device)[None]
            logits = model(context)
        next_id = sample_next(logits[:, -1].float().cpu(), temperature, top_k, gen)  # (1,)
        out.append(int(next_id))
        inputs = next_id.to(device)[None]                                   # (1, 1)
    model.train(was_training)
    return torch.tensor(out)
