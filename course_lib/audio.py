"""Speech features written out step by step (notebook 06): frames, window, STFT, power, mel filterbank, log.

For a signal x sampled at ``sample_rate`` Hz:

    frame t:       x_t[n] = x[t·hop + n],  n = 0 … N−1              (N = n_fft samples, 25 ms)
    window:        w[n] = 0.5 − 0.5 cos(2πn / N)                    (periodic Hann)
    STFT:          X_t[k] = Σ_n w[n] x_t[n] e^{−2πi kn/N},  k = 0 … N/2   (bin k is k·sample_rate/N Hz)
    power:         P_t[k] = |X_t[k]|²
    mel scale:     m(f) = 2595 log10(1 + f / 700)                   (O'Shaughnessy 1987; the HTK formula)
    filterbank:    M triangles with peaks at M points equally spaced in mel between f_min and f_max
    log-mel:       L_t[j] = log(Σ_k H[j, k] P_t[k] + ε)

Everything works on batches: a signal (..., L) gives frames (..., T, N) and features (..., T, M)
with T = 1 + ⌊(L − N) / hop⌋ (no padding: every frame lies inside the clip).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["FeatureConfig", "frame_signal", "hann_window", "stft", "power_spectrum", "hz_to_mel", "mel_to_hz",
           "mel_filterbank", "log_mel", "n_frames", "band_statistics"]


@dataclass(frozen=True)
class FeatureConfig:
    """Log-mel settings: 25 ms windows every 10 ms, 40 mel bands from 20 Hz to 8 kHz, at 16 kHz."""

    sample_rate: int = 16_000
    n_fft: int = 400                 # window length N in samples (25 ms)
    hop: int = 160                   # frame step in samples (10 ms)
    n_mels: int = 40
    f_min: float = 20.0
    f_max: float = 8_000.0           # at most sample_rate / 2 (the Nyquist frequency)
    eps: float = 1e-6                # floor inside the log: silence gives log(eps), not -inf

    def __post_init__(self) -> None:
        if not 0 < self.hop <= self.n_fft:
            raise ValueError(f"need 0 < hop <= n_fft, got hop={self.hop}, n_fft={self.n_fft}")
        if not 0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            raise ValueError(f"need 0 <= f_min < f_max <= sample_rate/2 = {self.sample_rate / 2}, got "
                             f"f_min={self.f_min}, f_max={self.f_max}")
        if self.n_mels < 1 or self.eps <= 0:
            raise ValueError(f"need n_mels >= 1 and eps > 0, got {self.n_mels}, {self.eps}")


def n_frames(length: int, n_fft: int, hop: int) -> int:
    """T = 1 + ⌊(L − N) / hop⌋ frames fit in a signal of ``length`` samples."""
    if length < n_fft:
        raise ValueError(f"a signal of {length} samples is shorter than one window of n_fft={n_fft}")
    return 1 + (length - n_fft) // hop


def frame_signal(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """x (..., L) -> frames (..., T, n_fft): frame t is x[t·hop : t·hop + n_fft] (a view, no copy)."""
    if not x.is_floating_point():
        raise ValueError(f"expected a floating-point signal (..., L), got dtype {x.dtype}")
    n_frames(x.shape[-1], n_fft, hop)
    return x.unfold(-1, n_fft, hop)


def hann_window(n: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The periodic Hann window w[k] = 0.5 − 0.5 cos(2πk / n), k = 0 … n−1 (n,)."""
    k = torch.arange(n, dtype=torch.float64)
    return (0.5 - 0.5 * torch.cos(2 * math.pi * k / n)).to(dtype)


def stft(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """x (..., L) -> complex spectrum (..., T, n_fft // 2 + 1): the FFT of each Hann-windowed frame."""
    frames = frame_signal(x, n_fft, hop)                                 # (..., T, N)
    return torch.fft.rfft(frames * hann_window(n_fft, x.dtype).to(x.device), dim=-1)


def power_spectrum(spec: torch.Tensor) -> torch.Tensor:
    """|X|² (..., T, K) from a complex spectrum."""
    return spec.real ** 2 + spec.imag ** 2


def hz_to_mel(f: torch.Tensor | float) -> torch.Tensor:
    """m = 2595 log10(1 + f / 700)."""
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(f, dtype=torch.float64) / 700.0)


def mel_to_hz(m: torch.Tensor | float) -> torch.Tensor:
    """f = 700 (10^(m / 2595) − 1), the inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (torch.as_tensor(m, dtype=torch.float64) / 2595.0) - 1.0)


def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int, f_min: float = 0.0,
                   f_max: float | None = None) -> torch.Tensor:
    """H (n_mels, n_fft // 2 + 1): triangle j rises from edge j to a peak of 1 at edge j+1, falls to edge j+2.

    The n_mels + 2 edges are equally spaced in mel between f_min and f_max; bin k sits at
    f_k = k · sample_rate / n_fft. Between two neighbouring peaks the falling and the rising
    triangle sum to 1.
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(f"need 0 <= f_min < f_max <= {sample_rate / 2}, got {f_min}, {f_max}")
    edges = mel_to_hz(torch.linspace(float(hz_to_mel(f_min)), float(hz_to_mel(f_max)), n_mels + 2))  # (M + 2,)
    freqs = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * sample_rate / n_fft                  # (K,)
    lo, peak, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]                              # (M, 1)
    rising = (freqs - lo) / (peak - lo)
    falling = (hi - freqs) / (hi - peak)
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()                             # (M, K)


def log_mel(x: torch.Tensor, cfg: FeatureConfig = FeatureConfig()) -> torch.Tensor:
    """x (..., L) float in [-1, 1] -> log-mel features (..., T, n_mels)."""
    power = power_spectrum(stft(x, cfg.n_fft, cfg.hop))                 # (..., T, K)
    bank = mel_filterbank(cfg.n_mels, cfg.n_fft, cfg.sample_rate, cfg.f_min, cfg.f_max).to(x.device, x.dtype)
    return torch.log(power @ bank.T + cfg.eps)                          # (..., T, M)


def band_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-band mean and standard deviation (M,), (M,) over every frame of ``features`` (N, T, M)."""
    flat = features.reshape(-1, features.shape[-1]).double()
    return flat.mean(0).float(), flat.std(0).clamp_min(1e-6).float()
