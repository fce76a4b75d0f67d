"""Notebook 05 checkers: right answers pass, each wrong answer is named, stubs are 'not attempted'."""

import torch

from course_lib.exercises.rnn_lm import check_rnn_cell, check_temperature_sampling
from course_lib.exercises.solutions.rnn_lm import rnn_cell, sample_with_temperature


def _stub(*args):
    raise NotImplementedError


def test_rnn_cell_checker():
    assert check_rnn_cell(rnn_cell).correct
    wrong = {
        "tanh": lambda x, h, W, b: torch.cat([h, x], 1) @ W.T + b,
        "order": lambda x, h, W, b: torch.tanh(torch.cat([x, h], 1) @ W.T + b),
        "bias": lambda x, h, W, b: torch.tanh(torch.cat([h, x], 1) @ W.T),
        "residual": lambda x, h, W, b: h + torch.tanh(torch.cat([h, x], 1) @ W.T + b),
        "(B, H)": lambda x, h, W, b: torch.tanh(torch.cat([h, x], 1) @ W.T + b).T,
    }
    for needle, fn in wrong.items():
        verdict = check_rnn_cell(fn)
        assert verdict.status == "wrong" and needle in verdict.message, (needle, verdict.message)
    assert check_rnn_cell(_stub).status == "not attempted"


def test_temperature_sampling_checker():
    assert check_temperature_sampling(sample_with_temperature).correct
    wrong = {
        "greedy": lambda z, t, g: int(z.argmax()),
        "multiplied": lambda z, t, g: int(torch.multinomial(torch.softmax(z * t, -1), 1, generator=g)),
        "ignored": lambda z, t, g: int(torch.multinomial(torch.softmax(z, -1), 1, generator=g)),
        "differ": lambda z, t, g: int(torch.randint(0, len(z), (1,), generator=g)),
    }
    for needle, fn in wrong.items():
        verdict = check_temperature_sampling(fn)
        assert verdict.status == "wrong" and needle in verdict.message, (needle, verdict.message)
    assert check_temperature_sampling(_stub).status == "not attempted"
