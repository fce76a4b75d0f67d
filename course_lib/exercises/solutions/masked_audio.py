"""Reference solutions for notebook 06's exercises (a mel filterbank, span masking, the masked-frame loss,
frequency masking of stacked frames)."""

from __future__ import annotations

import torch

__all__ = ["mel_filterbank", "span_mask", "masked_l1", "hide_bands"]


def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int, f_min: float, f_max: float) -> torch.Tensor:
    """Triangles with peaks of 1 at n_mels points equally spaced in mel, evaluated at the FFT bins."""
    to_mel = lambda f: 2595.0 * torch.log10(1.0 + torch.as_tensor(f, dtype=torch.float64) / 700.0)
    to_hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    edges = to_hz(torch.linspace(float(to_mel(f_min)), float(to_mel(f_max)), n_mels + 2, dtype=torch.float64))
    freqs = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * sample_rate / n_fft
    rising = (freqs - edges[:-2, None]) / (edges[1:-1, None] - edges[:-2, None])
    falling = (edges[2:, None] - freqs) / (edges[2:, None] - edges[1:-1, None])
    return torch.clamp(torch.minimum(rising, falling), min=0.0)


def span_mask(frames: int, starts: torch.Tensor, span: int) -> torch.Tensor:
    """(frames,) bool: frames start .. start + span - 1 hidden for every start (clipped at the end)."""
    t = torch.arange(frames)
    if len(starts) == 0:
        return torch.zeros(frames, dtype=torch.bool)
    return ((t[None, :] >= starts[:, None]) & (t[None, :] < starts[:, None] + span)).any(dim=0)


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean |pred - target| over the hidden frames (mask True) and all their bands."""
    return (pred - target).abs()[mask].mean()


def hide_bands(x: torch.Tensor, start: int, width: int, n_mels: int) -> torch.Tensor:
    """x (B, S, k·n_mels) with mel bands start .. start + width - 1 set to 0 in each of the k stacked frames."""
    b, s, kf = x.shape
    out = x.clone().reshape(b, s, kf // n_mels, n_mels)
    out[..., start:start + width] = 0.0
    return out.reshape(b, s, kf)
