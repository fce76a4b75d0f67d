"""Model FLOPs of a Transformer training step and model FLOPs utilisation (MFU).

Training FLOPs per token (Kaplan et al. 2020, "Scaling Laws for Neural Language Models",
§2.1; Chowdhery et al. 2022, "PaLM", appendix B):

    C = 6 N + 12 L T d                                                      (1)

* ``N``: weights that multiply activations: every ``nn.Linear`` in the blocks and the
  output head (a tied head counts: it is a D x V matmul). The embedding lookup,
  positions, LayerNorms and biases are not matmuls and are left out.
* 6 = 2 FLOPs per multiply-add x 3: the forward pass, and the backward pass for the
  activations and for the weights.
* ``12 L T d``: attention scores Q Kᵀ and the weighted sum A V, 2 x 2 T d FLOPs per token
  per layer forward, x 3. ``T`` is the context attended to; a causal model needs only
  half of the T x T scores, but the convention (and PaLM) counts them all.
* The MLM head runs only at the masked positions, so its share is ``head_fraction`` = the
  masking rate.

    MFU = C x tokens/s / peak FLOP/s of the device                          (2)

The peak is the vendor's dense bf16 tensor-core figure for known GPUs, or on a CPU a
measured fp32 matmul rate (so a CPU MFU says how close the model gets to the best
matmul this machine does, not to a datasheet).
"""

from __future__ import annotations

import time

import torch
from torch import nn

__all__ = ["linear_weights", "transformer_flops_per_token", "model_flops_per_token", "GPU_PEAK_BF16",
           "peak_flops", "measure_matmul_flops", "mfu"]

# dense bf16 tensor-core peak, FLOP/s (vendor datasheets; SXM parts unless the name says PCIe)
GPU_PEAK_BF16: dict[str, float] = {
    "H200": 989.4e12,
    "H100 PCIe": 756.5e12,
    "H100": 989.4e12,
    "A100": 312e12,
    "L40S": 362.05e12,
    "L4": 121e12,
}


def linear_weights(module: nn.Module | None) -> int:
    """Number of weights in the ``nn.Linear`` layers of ``module`` (each shared weight once)."""
    if module is None:
        return 0
    seen = {id(m.weight): m.weight.numel() for m in module.modules() if isinstance(m, nn.Linear)}
    return sum(seen.values())


def transformer_flops_per_token(body_weights: int, head_weights: int, n_layers: int, d_model: int,
                                context: int, head_fraction: float = 1.0) -> float:
    """Equation (1): 6 (N_body + head_fraction N_head) + 12 L T d training FLOPs per token."""
    if min(body_weights, head_weights, n_layers, d_model, context) < 0 or not 0.0 <= head_fraction <= 1.0:
        raise ValueError("weights, layers, d_model and context must be >= 0 and head_fraction in [0, 1]")
    return 6.0 * (body_weights + head_fraction * head_weights) + 12.0 * n_layers * context * d_model


def model_flops_per_token(model: nn.Module, context: int, head_fraction: float = 1.0) -> float:
    """Equation (1) for a course Transformer with ``.encoder`` and ``.head`` (TransformerLM, MaskedLM)."""
    encoder, head = getattr(model, "encoder", None), getattr(model, "head", None)
    if encoder is None or head is None or not hasattr(encoder, "cfg"):
        raise TypeError(f"expected a model with .encoder (TransformerEncoder) and .head, got {type(model).__name__}")
    cfg = encoder.cfg
    return transformer_flops_per_token(linear_weights(encoder), linear_weights(head), cfg.n_layers, cfg.d_model,
                                       context, head_fraction)


def measure_matmul_flops(device: torch.device | str = "cpu", n: int = 2048, seconds: float = 0.5) -> float:
    """Best FLOP/s of an n x n fp32 matmul (2 n^3 FLOPs) on ``device`` over about ``seconds``."""
    device = torch.device(device)
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b                                                       # warm-up
    best, start = 0.0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = max(best, 2 * n**3 / (time.perf_counter() - t0))
    return best


def peak_flops(device: torch.device | str) -> tuple[float | None, str]:
    """(peak FLOP/s, where the figure comes from) for ``device``; (None, reason) for an unknown GPU."""
    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key in sorted(GPU_PEAK_BF16, key=len, reverse=True):     # "H100 PCIe" before "H100"
            if key in name:
                return GPU_PEAK_BF16[key], f"{name}: dense bf16 datasheet peak ({key})"
        return None, f"{name}: no datasheet peak on record; pass one explicitly"
    if device.type == "cpu":
        return measure_matmul_flops(device), f"measured fp32 2048x2048 matmul, {torch.get_num_threads()} threads"
    return None, f"{device.type}: no peak on record"


def mfu(flops_per_token: float, tokens_per_s: float, peak: float) -> float:
    """Equation (2): achieved model FLOP/s over the device's peak."""
    if peak <= 0:
        raise ValueError(f"peak FLOP/s must be > 0, got {peak}")
    return flops_per_token * tokens_per_s / peak
