"""Checkers of notebook 06's exercises: right answers pass, wrong ones are named, stubs are 'not attempted'."""

import torch

from course_lib.exercises.masked_audio import check_hide_bands, check_masked_l1, check_mel_filterbank, check_span_mask
from course_lib.exercises.solutions import masked_audio as solutions


def _stub(*args):
    raise NotImplementedError


def test_solutions_pass_and_stubs_are_not_attempted():
    for check, solution in ((check_mel_filterbank, solutions.mel_filterbank), (check_span_mask, solutions.span_mask),
                            (check_masked_l1, solutions.masked_l1), (check_hide_bands, solutions.hide_bands)):
        assert check(solution, quiet=True).correct
        assert check(_stub, quiet=True).status == "not attempted"


def test_filterbank_mistakes_are_named():
    def linear(n_mels, n_fft, sr, f_min, f_max):                      # edges equally spaced in Hz
        edges = torch.linspace(f_min, f_max, n_mels + 2, dtype=torch.float64)
        freqs = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * sr / n_fft
        up = (freqs - edges[:-2, None]) / (edges[1:-1, None] - edges[:-2, None])
        down = (edges[2:, None] - freqs) / (edges[2:, None] - edges[1:-1, None])
        return torch.clamp(torch.minimum(up, down), min=0)
    v = check_mel_filterbank(linear, quiet=True)
    assert v.status == "wrong" and "equally spaced in Hz" in v.message
    v = check_mel_filterbank(lambda *a: 0.5 * solutions.mel_filterbank(*a), quiet=True)
    assert v.status == "wrong" and "peak of 1" in v.message
    v = check_mel_filterbank(lambda *a: solutions.mel_filterbank(*a).T, quiet=True)
    assert v.status == "wrong" and "shape" in v.message


def test_span_mask_mistakes_are_named():
    def short(frames, starts, span):
        return solutions.span_mask(frames, starts, span - 1)
    v = check_span_mask(short, quiet=True)
    assert v.status == "wrong" and "span - 1" in v.message
    v = check_span_mask(lambda f, s, k: solutions.span_mask(f, s, k).int(), quiet=True)
    assert v.status == "wrong" and "bool" in v.message


def test_loss_mistakes_are_named():
    v = check_masked_l1(lambda p, t, m: (p - t).abs().mean(), quiet=True)
    assert v.status == "wrong" and "every frame" in v.message
    v = check_masked_l1(lambda p, t, m: (p - t).abs()[m].sum() / m.sum(), quiet=True)
    assert v.status == "wrong" and "bands" in v.message
    v = check_masked_l1(lambda p, t, m: ((p - t) ** 2)[m].mean(), quiet=True)
    assert v.status == "wrong" and "squared" in v.message
    v = check_masked_l1(lambda p, t, m: (p - t).abs()[m].mean(dim=0), quiet=True)
    assert v.status == "wrong" and "scalar" in v.message


def test_hide_bands_mistakes_are_named():
    def first_frame_only(x, start, width, n_mels):
        out = x.clone()
        out[..., start:start + width] = 0.0
        return out
    v = check_hide_bands(first_frame_only, quiet=True)
    assert v.status == "wrong" and "every one of them" in v.message
    v = check_hide_bands(lambda x, s, w, n: solutions.hide_bands(x, s, max(w - 1, 0), n), quiet=True)
    assert v.status == "wrong" and "width - 1" in v.message
    def in_place(x, start, width, n_mels):
        x.view(*x.shape[:2], -1, n_mels)[..., start:start + width] = 0.0
        return x
    v = check_hide_bands(in_place, quiet=True)                      # right values, but the caller's x changed
    assert v.status == "correct" and "in place" in v.message
    v = check_hide_bands(lambda x, s, w, n: solutions.hide_bands(x, s, w, n)[:, :-1], quiet=True)
    assert v.status == "wrong" and "shape" in v.message
    v = check_hide_bands(lambda x, s, w, n: x.clone(), quiet=True)
    assert v.status == "wrong" and "expected the values" in v.message
