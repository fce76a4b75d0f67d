"""Checkers for notebook 05: the stream layout, an add-k smoothed bigram model and temperature sampling.

* ``stream_batch(ids (N,), batch_size B, seq_len T, step) -> (x, y)``, each (B, T): row b of the text
  laid out as B contiguous streams of L = N // B ids; batch ``step`` is window w = step mod W of every
  stream (W = (L - 1) // T windows), x = streams[:, wT : wT + T] and y the same shifted by one.
* ``add_k_bigram_nll(train_ids (N,), val_ids (M,), V, k) -> float``: the mean validation
  nats/char of P(c | ctx) = (count(ctx, c) + k) / (count(ctx) + k V), counted on the training ids.
* ``sample_with_temperature(logits (V,), temperature, generator) -> int`` draws i with
  probability softmax(logits / τ)_i (τ the temperature).
* ``choose_k(train_ids (N,), heldout_ids (M,), V, ks) -> float``: the k of ``ks`` whose add-k bigram,
  counted on the training ids, has the lowest mean nats/char on the held-out ids.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..chapters.rnn_lm import stream_layout
from ..models.ngram import NGramLM
from .base import ExerciseWrong, Verdict, run_checker

__all__ = ["check_stream_batch", "check_add_k_bigram_nll", "check_temperature_sampling", "check_choose_k"]


def _reference_batch(ids: torch.Tensor, B: int, T: int, step: int, *, interleave: bool = False,
                     stride: int | None = None, shift: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The stream layout's batch ``step``; the keyword switches build the classic mistakes."""
    L = len(ids) // B
    streams = ids[: B * L].view(L, B).T if interleave else stream_layout(ids, B)       # (B, L)
    windows = (L - 1) // T
    start = (step % windows) * T if stride is None else step * stride
    return streams[:, start: start + T], streams[:, start + shift: start + shift + T]


def _check_stream_batch(fn: Callable) -> None:
    ids = torch.arange(1000, 1000 + 203)           # N = 203: not a multiple of B; id = 1000 + position
    B, T = 4, 7
    L = len(ids) // B
    windows = (L - 1) // T
    for step in (0, 1, 2, windows - 1, windows, windows + 3):
        out = fn(ids, B, T, step)
        if not (isinstance(out, tuple) and len(out) == 2 and all(isinstance(t, torch.Tensor) for t in out)):
            raise ExerciseWrong("return a pair of tensors (x, y)")
        x, y = out
        if x.shape != (B, T) or y.shape != (B, T):
            raise ExerciseWrong(f"at step {step}: x and y must both have shape (B, T) = ({B}, {T}); got "
                                f"{tuple(x.shape)} and {tuple(y.shape)}")
        if x.is_floating_point() or y.is_floating_point():
            raise ExerciseWrong("x and y hold ids: keep an integer dtype")
        want_x, want_y = _reference_batch(ids, B, T, step)
        if torch.equal(x.long(), want_x) and torch.equal(y.long(), want_y):
            continue
        if step == 0:
            ix, iy = _reference_batch(ids, B, T, step, interleave=True)
            if torch.equal(x.long(), ix):
                raise ExerciseWrong("row b holds every B-th character (ids.view(-1, B).T): each row must be one "
                                    "contiguous slice of the text, ids[b L : (b + 1) L] with L = N // B, so that "
                                    "the next batch continues it")
        if torch.equal(x.long(), want_x):
            if torch.equal(y.long(), want_x):
                raise ExerciseWrong("y equals x: the targets are the next characters, x shifted by one position")
            if step > 0 and torch.equal(y.long(), _reference_batch(ids, B, T, step, shift=-1)[1]):
                raise ExerciseWrong("y is shifted the wrong way: y[:, t] is the character *after* x[:, t]")
            raise ExerciseWrong(f"at step {step} x is right but y is not: y = streams[:, wT + 1 : wT + T + 1]")
        if step >= windows:
            raise ExerciseWrong(f"step {step} is past the last whole window ({windows} windows of T = {T} in a "
                                f"stream of {L}): wrap around, w = step mod {windows}")
        if torch.equal(x.long(), _reference_batch(ids, B, T, step, stride=1)[0]):
            raise ExerciseWrong("windows overlap (batch s starts at position s): batch s must start at s T, so "
                                "row b of batch s + 1 continues row b of batch s")
        if torch.equal(x.long(), _reference_batch(ids, B, T, step, stride=T + 1)[0]):
            raise ExerciseWrong("batch s starts at s (T + 1): one character is skipped between windows; the last "
                                "target of one batch is the first input of the next, so batch s starts at s T")
        raise ExerciseWrong(f"at step {step}, x[0] is {x[0].tolist()}; expected {want_x[0].tolist()}")


def check_stream_batch(stream_batch: Callable) -> Verdict:
    """Check ``stream_batch(ids (N,), batch_size, seq_len, step) -> (x, y)`` against the library's layout."""
    return run_checker("stream_batch", stream_batch, _check_stream_batch)


def _markov_text(V: int, n: int, g: torch.Generator) -> torch.Tensor:
    """(n,) ids from a random first-order Markov chain over V symbols, so that context matters."""
    P = torch.softmax(3 * torch.randn(V, V, generator=g, dtype=torch.float64), dim=1)       # (V, V) rows sum to 1
    ids = [0]
    for _ in range(n - 1):
        ids.append(int(torch.multinomial(P[ids[-1]], 1, generator=g)))
    return torch.tensor(ids)


def _add_k_bigram_reference(train: torch.Tensor, val: torch.Tensor, V: int, k: float, *, denom_k: float | None = None,
                            swap: bool = False) -> float:
    """Mean nats of val[1:] given val[:-1] under add-k; ``denom_k``/``swap`` build the classic mistakes."""
    prev, nxt = (train[1:], train[:-1]) if swap else (train[:-1], train[1:])
    counts = torch.bincount(prev * V + nxt, minlength=V * V).view(V, V).double()         # (V, V) [ctx, c]
    denom = counts.sum(1, keepdim=True) + (k * V if denom_k is None else denom_k)        # (V, 1)
    p = (counts + k) / denom
    a, b = (val[1:], val[:-1]) if swap else (val[:-1], val[1:])
    return float(-p[a, b].log().mean())


def _check_add_k_bigram(fn: Callable) -> None:
    g = torch.Generator().manual_seed(0)
    V = 7
    train, val = _markov_text(V, 400, g), _markov_text(V, 300, g)
    for k in (0.1, 1.0):
        out = fn(train, val, V, k)
        if isinstance(out, torch.Tensor):
            if out.numel() != 1:
                raise ExerciseWrong(f"return one number (the mean nats/char), got a tensor of shape {tuple(out.shape)}")
            out = float(out)
        if not isinstance(out, (float, int)):
            raise ExerciseWrong(f"return a float, got {type(out).__name__}")
        out = float(out)
        want = _add_k_bigram_reference(train, val, V, k)
        if math.isclose(out, want, rel_tol=1e-6):
            continue
        if not math.isfinite(out):
            raise ExerciseWrong(f"at k={k} the loss is {out}: a pair never seen in training got probability 0; "
                                "add k to every count")
        def close(x: float, out: float = out) -> bool:
            return math.isclose(out, x, rel_tol=1e-6)
        if close(want / math.log(2)):
            raise ExerciseWrong("that is bits/char: use the natural log (nats), as the chapter does")
        if close(want * (len(val) - 1)):
            raise ExerciseWrong("that is the total: return the mean over the len(val) - 1 predicted characters")
        if close(_add_k_bigram_reference(train, val, V, k, denom_k=k)) or \
                close(_add_k_bigram_reference(train, val, V, k, denom_k=0.0)):
            raise ExerciseWrong("the denominator must be count(ctx) + k V: adding k to each of the V counts adds "
                                "k V to their total, otherwise the probabilities do not sum to one")
        if close(_add_k_bigram_reference(train, val, V, k, swap=True)):
            raise ExerciseWrong("context and target are swapped: the context is the previous character, "
                                "P(x_t | x_{t-1}) = (count(x_{t-1}, x_t) + k) / (count(x_{t-1}) + k V)")
        if close(_add_k_bigram_reference(val, val, V, k)):
            raise ExerciseWrong("you counted the validation text: the counts must come from train_ids only")
        unigram = torch.bincount(train, minlength=V).double()
        if close(float(-((unigram + k) / (unigram.sum() + k * V))[val[1:]].log().mean())):
            raise ExerciseWrong("that is the unigram model: condition on the previous character")
        raise ExerciseWrong(f"at k={k} the loss is {out:.6f} nats/char; add-k smoothing gives {want:.6f}")


def check_add_k_bigram_nll(add_k_bigram_nll: Callable) -> Verdict:
    """Check ``add_k_bigram_nll(train_ids (N,), val_ids (M,), V, k) -> float`` on a random Markov text."""
    return run_checker("add_k_bigram_nll", add_k_bigram_nll, _check_add_k_bigram)


def _check_sampling(sample: Callable) -> None:
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0])
    for temperature in (0.5, 1.0, 2.0):
        expected = torch.softmax(logits / temperature, 0)
        g = torch.Generator().manual_seed(123)
        draws = [sample(logits, temperature, g) for _ in range(4000)]
        if not all(isinstance(d, int) or (isinstance(d, torch.Tensor) and d.numel() == 1
                                          and not d.is_floating_point()) for d in draws):
            raise ExerciseWrong("return one index (an int) per call")
        indices = torch.tensor([int(d) for d in draws])
        bad = indices[(indices < 0) | (indices >= len(logits))]
        if len(bad):
            raise ExerciseWrong(f"index {int(bad[0])} is out of range: with {len(logits)} logits an index is "
                                f"0 to {len(logits) - 1}")
        counts = torch.bincount(indices, minlength=4).double()
        freq = counts / counts.sum()
        # 4000 draws: the standard error of a frequency is <= 0.008, so 0.04 is five of them
        if not (freq - expected).abs().max() <= 0.04:        # written so that a NaN fails too
            if counts[0] == counts.sum():
                raise ExerciseWrong(f"at τ={temperature} you always pick index 0: that is greedy argmax, "
                                    "not sampling (use torch.multinomial with the generator)")
            flipped = torch.softmax(logits * temperature, 0)
            if (freq - flipped).abs().max() < 0.04:
                raise ExerciseWrong("divide the logits by τ (you multiplied): τ > 1 must flatten the distribution")
            plain = torch.softmax(logits, 0)
            if temperature != 1.0 and (freq - plain).abs().max() < 0.04:
                raise ExerciseWrong(f"at τ={temperature} your frequencies match τ=1: the temperature is ignored")
            raise ExerciseWrong(f"at τ={temperature} frequencies {[round(float(f), 3) for f in freq]} differ from "
                                f"softmax(logits/τ) = {[round(float(p), 3) for p in expected]}")


def check_temperature_sampling(sample: Callable) -> Verdict:
    """Check ``sample_with_temperature(logits (V,), temperature, generator) -> int`` statistically."""
    return run_checker("sample_with_temperature", sample, _check_sampling)


CHOICES = (0.001, 0.01, 0.1, 0.3, 1.0, 3.0)          # the k the checker offers: its text's best is one in the middle


def _check_choose_k(fn: Callable) -> None:
    g = torch.Generator().manual_seed(5)
    V = 40
    text = _markov_text(V, 4000, g)                                            # one chain, then split
    train, heldout = text[:3000], text[3000:]
    held = [NGramLM(2, V, k).fit(train).nll(heldout) for k in CHOICES]          # held-out nats/char per k
    on_train = [NGramLM(2, V, k).fit(train).nll(train) for k in CHOICES]       # the same, scored on train
    best = CHOICES[min(range(len(CHOICES)), key=held.__getitem__)]
    out = fn(train, heldout, V, CHOICES)
    if isinstance(out, torch.Tensor) and out.numel() == 1:
        out = out.item()
    if isinstance(out, tuple):
        raise ExerciseWrong("return one number, the chosen k (not a tuple)")
    if not isinstance(out, (float, int)):
        raise ExerciseWrong(f"return the chosen k as a float, got {type(out).__name__}")
    out = float(out)
    if math.isclose(out, best, rel_tol=1e-6):
        return
    if any(math.isclose(out, h, rel_tol=1e-9) for h in held):
        raise ExerciseWrong("that is a held-out loss: return the k that gives the lowest one")
    if out == int(out) and int(out) in range(len(CHOICES)) and CHOICES[int(out)] == best:
        raise ExerciseWrong(f"{int(out)} is the position of the best k in ks: return the value, ks[{int(out)}]")
    if math.isclose(out, CHOICES[min(range(len(CHOICES)), key=on_train.__getitem__)], rel_tol=1e-6):
        raise ExerciseWrong(f"you chose k = {out:g} on the training ids, the text the counts came from: there "
                            "smoothing only takes probability away from pairs that were seen, so the smallest k "
                            "always wins. Score each k on the held-out ids")
    if math.isclose(out, CHOICES[max(range(len(CHOICES)), key=held.__getitem__)], rel_tol=1e-6):
        raise ExerciseWrong(f"k = {out:g} has the highest held-out loss: choose the lowest")
    raise ExerciseWrong(f"you chose k = {out:g}; on the checker's text the held-out loss is lowest at k = {best:g}")


def check_choose_k(choose_k: Callable) -> Verdict:
    """Check ``choose_k(train_ids (N,), heldout_ids (M,), V, ks) -> float`` on a random Markov text."""
    return run_checker("choose_k", choose_k, _check_choose_k)
