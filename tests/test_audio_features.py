"""Speech features (course_lib/audio.py): each step against numpy or its formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from course_lib.audio import (FeatureConfig, frame_signal, hann_window, hz_to_mel, log_mel, mel_filterbank,
                              mel_to_hz, n_frames, power_spectrum, stft)


def test_frames_windows_and_stft_equal_numpy_frame_by_frame():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(1600)
    spec = stft(torch.from_numpy(x), n_fft=400, hop=160)                      # (T, 201)
    assert spec.shape == (n_frames(1600, 400, 160), 201) == (8, 201)
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)                  # periodic Hann, by formula
    for t in range(spec.shape[0]):
        expected = np.fft.rfft(x[t * 160: t * 160 + 400] * w)
        np.testing.assert_allclose(spec[t].numpy(), expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(hann_window(400, torch.float64).numpy(), w)
    assert frame_signal(torch.zeros(2, 3, 1000), 400, 160).shape == (2, 3, 4, 400)


def test_parseval_on_one_frame():
    """Σ|x|² = (1/N) Σ_k |X_k|² over the full FFT; rfft holds bins 1..N/2-1 once, so they count twice."""
    rng = np.random.default_rng(1)
    frame = torch.from_numpy(rng.standard_normal(400))
    p = power_spectrum(torch.fft.rfft(frame))
    full = p[0] + 2 * p[1:-1].sum() + p[-1]
    assert float(full / 400) == pytest.approx(float((frame ** 2).sum()), rel=1e-12)


def test_mel_scale_round_trip_and_known_values():
    f = torch.tensor([0.0, 700.0, 1000.0, 8000.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(f)).numpy(), f.numpy(), rtol=1e-12, atol=1e-9)
    assert float(hz_to_mel(700.0)) == pytest.approx(2595 * math.log10(2))
    assert float(hz_to_mel(1000.0)) == pytest.approx(999.99, abs=0.05)       # the scale's anchor: 1 kHz ~ 1000 mel


def test_filterbank_triangles_peaks_and_partition_of_unity():
    bank = mel_filterbank(40, 400, 16_000, 20.0, 8_000.0).double()            # (40, 201)
    assert bank.shape == (40, 201) and float(bank.min()) >= 0 and float(bank.max()) <= 1
    edges = mel_to_hz(torch.linspace(float(hz_to_mel(20.0)), float(hz_to_mel(8000.0)), 42))
    freqs = torch.arange(201, dtype=torch.float64) * 16_000 / 400
    inside = (freqs >= edges[1]) & (freqs <= edges[-2])                       # between the first and last peak
    np.testing.assert_allclose(bank[:, inside].sum(0).numpy(), 1.0, atol=1e-6)   # neighbours sum to 1
    assert float(bank[:, freqs < edges[0]].sum()) == 0 and float(bank[:, freqs > edges[-1]].sum()) == 0
    centres = freqs[bank.argmax(dim=1)]                                       # each triangle peaks near its centre
    assert torch.all(centres[1:] >= centres[:-1])
    with pytest.raises(ValueError, match="f_max"):
        mel_filterbank(40, 400, 16_000, 20.0, 9_000.0)


def test_log_mel_of_a_tone_peaks_in_the_right_band():
    cfg = FeatureConfig()
    t = torch.arange(16_000, dtype=torch.float32) / 16_000
    feats = log_mel(0.5 * torch.sin(2 * math.pi * 1000 * t), cfg)             # (T, 40)
    bank = mel_filterbank(cfg.n_mels, cfg.n_fft, cfg.sample_rate, cfg.f_min, cfg.f_max)
    band_of_1k = int(bank[:, round(1000 * cfg.n_fft / cfg.sample_rate)].argmax())
    assert feats.shape == (98, 40) and int(feats.mean(0).argmax()) == band_of_1k
    silence = log_mel(torch.zeros(16_000), cfg)
    assert torch.allclose(silence, torch.full_like(silence, math.log(cfg.eps)))   # the floor, not -inf


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="shorter than one window"):
        stft(torch.zeros(100), 400, 160)
    with pytest.raises(ValueError, match="floating-point"):
        frame_signal(torch.zeros(1000, dtype=torch.int16), 400, 160)
    with pytest.raises(ValueError, match="hop"):
        FeatureConfig(hop=0)
