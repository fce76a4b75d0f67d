"""Checkers for notebook 02's exercises: BERT masking and the masked-only loss.

The masking checker is statistical: it masks ~25k tokens (with [CLS], [SEP] and [PAD]
among them) and tests the selection rate (15% of real tokens), the 80/10/10 split, that
special tokens and padding are never selected, and the -100 convention of the targets,
each with a tolerance of several standard deviations. It names the usual mistakes
(masking padding, 100% [MASK], random tokens that are special, targets everywhere).
Solutions: ``course_lib.exercises.solutions.mlm``.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ..data.text import CLS, MASK, N_SPECIAL, PAD, SEP
from .base import ExerciseWrong, Verdict, run_checker

__all__ = ["check_mask_tokens", "check_masked_loss"]

_V = 300


def _mask_inputs() -> torch.Tensor:
    """(200, 128) rows: [CLS] tokens [SEP] [PAD]..., lengths 40..128."""
    g = torch.Generator().manual_seed(0)
    B, T = 200, 128
    ids = torch.randint(N_SPECIAL, _V, (B, T), generator=g)
    lengths = torch.randint(40, T + 1, (B,), generator=g)
    for b, n in enumerate(lengths.tolist()):
        ids[b, 0], ids[b, n - 1] = CLS, SEP
        ids[b, n:] = PAD
    return ids


def _rate_msg(what: str, got: float, want: float, n: int) -> str:
    return f"{what}: {got:.1%} of {n} (expected {want:.0%})"


def _mask_check(fn: Callable) -> None:
    ids = _mask_inputs()
    out = fn(ids.clone(), _V, torch.Generator().manual_seed(1))
    if not isinstance(out, tuple) or len(out) != 2:
        raise ExerciseWrong("return a pair (inputs, targets)")
    inputs, targets = out
    for name, t in (("inputs", inputs), ("targets", targets)):
        if not isinstance(t, torch.Tensor) or t.shape != ids.shape or t.dtype != torch.long:
            raise ExerciseWrong(f"{name} should be an int64 tensor of shape {tuple(ids.shape)}, got "
                                f"{getattr(t, 'dtype', type(t).__name__)} {tuple(getattr(t, 'shape', ()))}")
    special = ids < N_SPECIAL
    selected = targets != -100
    if bool((selected & (targets != ids)).any()):
        raise ExerciseWrong("targets must hold the ORIGINAL token id at selected positions (not the [MASK] id "
                            "or the random replacement)")
    if bool((~selected & (inputs != ids)).any()):
        raise ExerciseWrong("a position whose target is -100 was changed in inputs: only selected positions may change")
    n_real = int((~special).sum())
    rate = float((selected & ~special).sum()) / n_real
    if rate > 0.9:
        raise ExerciseWrong("every real position has a target: targets must be -100 at unselected positions "
                            "(the loss is over the selected 15% only)")
    if bool((selected & (ids == PAD)).any()):
        raise ExerciseWrong("padding ([PAD], id 0) was selected: only real tokens (id >= 5) may be masked; "
                            "predicting padding is trivial and wastes the loss")
    if bool((selected & special).any()):
        raise ExerciseWrong("special tokens ([CLS]/[SEP], ids < 5) were selected: only real tokens (id >= 5) may "
                            "be masked")
    if abs(rate - 0.15) > 0.015:
        raise ExerciseWrong(_rate_msg("selected share of real tokens", rate, 0.15, n_real))
    n_sel = int(selected.sum())
    sel_in = inputs[selected]
    frac_mask = float((sel_in == MASK).float().mean())
    frac_same = float((sel_in == ids[selected]).float().mean())
    frac_random = 1.0 - frac_mask - frac_same
    if frac_mask > 0.97:
        raise ExerciseWrong(f"{frac_mask:.0%} of selected tokens became [MASK]: only 80% should; 10% get a random "
                            f"token and 10% stay unchanged, because [MASK] never appears at fine-tuning time")
    if abs(frac_mask - 0.8) > 0.04:
        raise ExerciseWrong(_rate_msg("selected tokens replaced by [MASK]", frac_mask, 0.8, n_sel))
    if abs(frac_same - 0.1) > 0.035:
        raise ExerciseWrong(_rate_msg("selected tokens left unchanged", frac_same, 0.1, n_sel))
    if abs(frac_random - 0.1) > 0.035:
        raise ExerciseWrong(_rate_msg("selected tokens replaced by a random token", frac_random, 0.1, n_sel))
    replaced = sel_in[(sel_in != MASK) & (sel_in != ids[selected])]
    if bool((replaced < N_SPECIAL).any()) or bool((replaced >= _V).any()):
        raise ExerciseWrong(f"random replacements must be ordinary tokens in [5, vocab_size={_V}); got ids "
                            f"{sorted(set(replaced[(replaced < N_SPECIAL) | (replaced >= _V)].tolist()))[:5]}")
    if len(replaced) and len(torch.unique(replaced)) < 0.5 * min(len(replaced), _V - N_SPECIAL):
        raise ExerciseWrong("the random replacements are not spread over the vocabulary: draw each uniformly "
                            "from [5, vocab_size)")
    again = fn(ids.clone(), _V, torch.Generator().manual_seed(1))
    other = fn(ids.clone(), _V, torch.Generator().manual_seed(2))
    if not (torch.equal(again[0], inputs) and torch.equal(again[1], targets)):
        raise ExerciseWrong("the same generator seed gave a different mask: draw all randomness from `generator`")
    if torch.equal(other[1], targets):
        raise ExerciseWrong("another generator seed gave the same mask: draw all randomness from `generator`")


def check_mask_tokens(fn: Callable, quiet: bool = False) -> Verdict:
    """Check ``fn(ids (B, T), vocab_size, generator) -> (inputs, targets)`` (BERT 15% / 80-10-10)."""
    return run_checker("BERT masking", fn, _mask_check, quiet)


def _loss_check(fn: Callable) -> None:
    g = torch.Generator().manual_seed(3)
    B, T, V = 4, 10, 17
    logits = torch.randn(B, T, V, generator=g, dtype=torch.float64, requires_grad=True)
    ids = torch.randint(0, V, (B, T), generator=g)
    keep = torch.rand(B, T, generator=g) < 0.3
    keep[0, 0] = True
    targets = ids.masked_fill(~keep, -100)
    out = fn(logits, targets)
    if not isinstance(out, torch.Tensor) or out.numel() != 1:
        raise ExerciseWrong(f"return a scalar tensor, got {type(out).__name__} {tuple(getattr(out, 'shape', ()))}")
    if not out.requires_grad:
        raise ExerciseWrong("the loss has no gradient: compute it with torch ops on `logits` (no .item(), no numpy)")
    ref = F.cross_entropy(logits[keep], ids[keep]).detach()
    value = float(out.detach())
    n_sel, n_all = int(keep.sum()), B * T
    if abs(value - float(ref)) < 1e-6:
        (grad,) = torch.autograd.grad(out.sum(), logits)
        if float(grad[~keep].abs().max()) > 1e-12:
            raise ExerciseWrong("unselected positions receive gradient: only positions with a target contribute")
        return
    if abs(value - float(ref) * n_sel) < 1e-5:
        raise ExerciseWrong("you summed the per-token losses: take the mean over the selected positions")
    if abs(value - float(ref) * n_sel / n_all) < 1e-6:
        raise ExerciseWrong(f"you divided by all {n_all} positions; divide by the {n_sel} selected ones "
                            f"(the loss should not shrink when fewer tokens are masked)")
    raise ExerciseWrong(f"loss is {value:.4f}, expected {float(ref):.4f}: mean cross-entropy of the original token at "
                        f"positions whose target is not -100")


def check_masked_loss(fn: Callable, quiet: bool = False) -> Verdict:
    """Check ``fn(logits (B, T, V), targets (B, T) with -100) -> scalar`` masked-only mean cross-entropy."""
    return run_checker("masked-only loss", fn, _loss_check, quiet)
