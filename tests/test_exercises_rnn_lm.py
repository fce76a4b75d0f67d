"""Notebook 05 checkers: right answers pass, each wrong answer is named, stubs are 'not attempted'."""

import pytest
import torch

from course_lib.chapters import rnn_lm
from course_lib.chapters.char_lm import CharData
from course_lib.exercises.rnn_lm import (check_add_k_bigram_nll, check_choose_k, check_stream_batch,
                                        check_temperature_sampling)
from course_lib.exercises.solutions.rnn_lm import add_k_bigram_nll, choose_k, sample_with_temperature, stream_batch
from course_lib.models.ngram import NGramLM


def _stub(*args):
    raise NotImplementedError


def _add_k(train, val, V, k, *, denom=None, log=torch.log, reduce=torch.mean, swap=False, counted=None):
    """add-k bigram nll with switches that build each classic mistake."""
    src = train if counted is None else counted
    a, b = (src[1:], src[:-1]) if swap else (src[:-1], src[1:])
    counts = torch.bincount(a * V + b, minlength=V * V).view(V, V).double()
    p = (counts + k) / (counts.sum(1, keepdim=True) + (k * V if denom is None else denom(k, V)))
    va, vb = (val[1:], val[:-1]) if swap else (val[:-1], val[1:])
    return float(reduce(-log(p[va, vb])))


def _batch(ids, B, T, step, *, interleave=False, start=None, shift=1, wrap=True):
    """A stream batch with switches that build each classic mistake."""
    L = len(ids) // B
    streams = ids[: B * L].view(L, B).T if interleave else ids[: B * L].view(B, L)
    w = step % ((L - 1) // T) if wrap else step
    s0 = w * T if start is None else start(step)
    return streams[:, s0: s0 + T], streams[:, s0 + shift: s0 + shift + T]


def test_stream_batch_solution_is_the_library_task():
    ids = torch.arange(500)
    task = rnn_lm.CharLMTask(ids, ids, CharData(batch_size=4, seq_len=9))
    for step in (0, 1, task.windows - 1, task.windows, 3 * task.windows + 2):
        x, y = stream_batch(ids, 4, 9, step)
        assert torch.equal(x, task.batch(step)["x"]) and torch.equal(y, task.batch(step)["y"])


def test_stream_batch_checker():
    assert check_stream_batch(stream_batch).correct
    assert check_stream_batch(lambda i, B, T, s: tuple(t.int() for t in stream_batch(i, B, T, s))).correct
    wrong = {
        "contiguous slice": lambda i, B, T, s: _batch(i, B, T, s, interleave=True),
        "y equals x": lambda i, B, T, s: _batch(i, B, T, s, shift=0),
        "wrong way": lambda i, B, T, s: _batch(i, B, T, s, shift=-1) if s else _batch(i, B, T, s),
        "overlap": lambda i, B, T, s: _batch(i, B, T, s, start=lambda s: s),
        "skipped": lambda i, B, T, s: _batch(i, B, T, s, start=lambda s: s * (T + 1)),
        "wrap around": lambda i, B, T, s: _batch(i, B, T, min(s, 6), wrap=False),      # stuck at the last window
        "shape (B, T)": lambda i, B, T, s: (i[:T], i[1:T + 1]),
        "integer dtype": lambda i, B, T, s: tuple(t.float() for t in stream_batch(i, B, T, s)),
        "pair of tensors": lambda i, B, T, s: stream_batch(i, B, T, s)[0],
    }
    for needle, fn in wrong.items():
        verdict = check_stream_batch(fn)
        assert verdict.status == "wrong" and needle in verdict.message, (needle, verdict.message)
    assert check_stream_batch(_stub).status == "not attempted"


def test_add_k_bigram_checker():
    assert check_add_k_bigram_nll(add_k_bigram_nll).correct
    assert check_add_k_bigram_nll(lambda t, v, V, k: torch.tensor(add_k_bigram_nll(t, v, V, k))).correct
    wrong = {
        "natural log": lambda t, v, V, k: _add_k(t, v, V, k, log=torch.log2),
        "mean": lambda t, v, V, k: _add_k(t, v, V, k, reduce=torch.sum),
        "k V": lambda t, v, V, k: _add_k(t, v, V, k, denom=lambda k, V: k),
        "sum to one": lambda t, v, V, k: _add_k(t, v, V, k, denom=lambda k, V: 0.0),
        "swapped": lambda t, v, V, k: _add_k(t, v, V, k, swap=True),
        "train_ids only": lambda t, v, V, k: _add_k(t, v, V, k, counted=v),
        "probability 0": lambda t, v, V, k: _add_k(t, v, V, 0.0),
        "unigram": lambda t, v, V, k: float(-((torch.bincount(t, minlength=V) + k) / (len(t) + k * V))
                                            .log()[v[1:]].mean()),
        "one number": lambda t, v, V, k: torch.zeros(3),
        "add-k smoothing gives": lambda t, v, V, k: add_k_bigram_nll(t, v, V, k) + 0.01,
    }
    for needle, fn in wrong.items():
        verdict = check_add_k_bigram_nll(fn)
        assert verdict.status == "wrong" and needle in verdict.message, (needle, verdict.message)
    assert check_add_k_bigram_nll(_stub).status == "not attempted"


def test_add_k_bigram_solution_matches_the_library_on_compact_ids():
    """The reference equals NGramLM(2, V, k) on uint8 ids, as the notebook's text is stored."""
    g = torch.Generator().manual_seed(1)
    train, val = torch.randint(0, 30, (5000,), generator=g), torch.randint(0, 30, (800,), generator=g)
    for k in (0.01, 0.5):
        want = NGramLM(2, 30, k).fit(train).nll(val)
        assert add_k_bigram_nll(train.to(torch.uint8), val, 30, k) == pytest.approx(want, rel=1e-9)


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


def _scored(train, heldout, V, ks, *, on=None, pick=min):
    """Each k's add-k bigram loss on ``on`` (default: the held-out ids), and the k that ``pick`` selects."""
    losses = [NGramLM(2, V, k).fit(train).nll(heldout if on is None else on) for k in ks]
    return ks[pick(range(len(ks)), key=losses.__getitem__)], losses


def test_choose_k_checker():
    assert check_choose_k(choose_k).correct
    assert check_choose_k(lambda t, h, V, ks: torch.tensor(choose_k(t, h, V, ks))).correct
    wrong = {
        "on the training ids": lambda t, h, V, ks: _scored(t, h, V, ks, on=t)[0],
        "highest held-out loss": lambda t, h, V, ks: _scored(t, h, V, ks, pick=max)[0],
        "held-out loss": lambda t, h, V, ks: min(_scored(t, h, V, ks)[1]),
        "position of the best k": lambda t, h, V, ks: ks.index(choose_k(t, h, V, ks)),
        "not a tuple": lambda t, h, V, ks: (choose_k(t, h, V, ks), 0.0),
        "you chose k = 0.3": lambda t, h, V, ks: 0.3,
        "as a float": lambda t, h, V, ks: str(choose_k(t, h, V, ks)),
    }
    for needle, fn in wrong.items():
        verdict = check_choose_k(fn)
        assert verdict.status == "wrong" and needle in verdict.message, (needle, verdict.message)
    assert check_choose_k(_stub).status == "not attempted"
