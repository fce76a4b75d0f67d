"""Checkers for notebook 02's exercises: whole-word masking and the masked-only loss.

The whole-word checker is statistical: it masks ~25k tokens of synthetic rows whose
words are one to four WordPiece tokens (with [CLS], [SEP] and [PAD] among them) and
tests that every word is selected whole or not at all, the selection rate (15% of
words), the 80/10/10 split of the selected tokens, that special tokens and padding are
never selected, and the -100 convention of the targets, each with a tolerance of several
standard deviations. It names the usual mistakes (selecting tokens instead of words,
masking only a word's first piece, treating '##' pieces as words, 100% [MASK]); the loss
checker names the sum, the mean over all positions and the entropy with no targets.
Solutions: ``course_lib.exercises.solutions.mlm``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..data.text import CLS, MASK, N_SPECIAL, PAD, SEP
from .base import ExerciseWrong, Verdict, run_checker

__all__ = ["check_whole_word_mask", "check_masked_loss"]

_V, _FIRST_PIECE = 300, 150            # ids 5..149 start a word, ids 150..299 are '##' pieces


def _word_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """(200, 128) rows [CLS] words [SEP] [PAD]... (words of 1-4 tokens), and is_piece (V,)."""
    g = torch.Generator().manual_seed(0)
    B, T = 200, 128
    ids = torch.full((B, T), PAD, dtype=torch.long)
    for b in range(B):
        n = int(torch.randint(40, T + 1, (), generator=g))
        row = [CLS]
        while True:
            k = int(torch.randint(1, 5, (), generator=g))                  # tokens in this word
            word = [int(torch.randint(N_SPECIAL, _FIRST_PIECE, (), generator=g))]
            word += torch.randint(_FIRST_PIECE, _V, (k - 1,), generator=g).tolist()
            if len(row) + len(word) + 1 > n:
                break
            row += word
        row.append(SEP)
        ids[b, : len(row)] = torch.tensor(row)
    is_piece = torch.arange(_V) >= _FIRST_PIECE
    return ids, is_piece


def _word_start(ids: torch.Tensor, is_piece: torch.Tensor) -> torch.Tensor:
    """(B, T) position of the first token of each token's word."""
    B, T = ids.shape
    starts = (ids >= N_SPECIAL) & ~is_piece[ids]
    return torch.where(starts, torch.arange(T).expand(B, T), 0).cummax(dim=-1).values


def _rate_msg(what: str, got: float, want: float, n: int) -> str:
    return f"{what}: {got:.1%} of {n} (expected {want:.0%})"


def _whole_word_check(fn: Callable) -> None:
    ids, is_piece = _word_inputs()
    out = fn(ids.clone(), is_piece.clone(), torch.Generator().manual_seed(1))
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
    real = ~special
    if float(selected[real].float().mean()) > 0.9:
        raise ExerciseWrong("every real position has a target: targets must be -100 at unselected positions")
    if bool((selected & special).any()):
        raise ExerciseWrong("special tokens or padding (ids < 5) were selected: only real tokens (id >= 5) may be "
                            "masked")
    start = _word_start(ids, is_piece)
    split = real & (selected != selected.gather(-1, start))                 # (B, T) token disagrees with its word
    if bool(split.any()):
        raise ExerciseWrong(f"words were partly selected ({int(split.sum())} tokens disagree with the first token "
                            f"of their word): select every token of a selected word, its '##' pieces too, and "
                            f"decide once per word: a '##' piece belongs to the word before it (use is_piece)")
    starts = real & ~is_piece[ids]
    n_words = int(starts.sum())
    rate = float(selected[starts].float().mean())          # comparisons below are written so that NaN fails
    if not abs(rate - 0.15) <= 0.02:
        raise ExerciseWrong(_rate_msg("selected share of words", rate, 0.15, n_words))
    n_sel = int(selected.sum())
    sel_in = inputs[selected]
    frac_mask = float((sel_in == MASK).float().mean())
    frac_same = float((sel_in == ids[selected]).float().mean())
    frac_random = 1.0 - frac_mask - frac_same
    if frac_mask > 0.97:
        raise ExerciseWrong(f"{frac_mask:.0%} of selected tokens became [MASK]: only 80% should; 10% get a random "
                            f"token and 10% stay unchanged, because [MASK] never appears at fine-tuning time")
    if not abs(frac_mask - 0.8) <= 0.04:
        raise ExerciseWrong(_rate_msg("selected tokens replaced by [MASK]", frac_mask, 0.8, n_sel))
    if not abs(frac_same - 0.1) <= 0.035:
        raise ExerciseWrong(_rate_msg("selected tokens left unchanged", frac_same, 0.1, n_sel))
    if not abs(frac_random - 0.1) <= 0.035:
        raise ExerciseWrong(_rate_msg("selected tokens replaced by a random token", frac_random, 0.1, n_sel))
    replaced = sel_in[(sel_in != MASK) & (sel_in != ids[selected])]
    if bool((replaced < N_SPECIAL).any()) or bool((replaced >= _V).any()):
        raise ExerciseWrong(f"random replacements must be ordinary tokens in [5, V={_V}); got ids "
                            f"{sorted(set(replaced[(replaced < N_SPECIAL) | (replaced >= _V)].tolist()))[:5]}")
    if len(replaced) and len(torch.unique(replaced)) < 0.5 * min(len(replaced), _V - N_SPECIAL):
        raise ExerciseWrong("the random replacements are not spread over the vocabulary: draw each uniformly "
                            "from [5, V)")
    again = fn(ids.clone(), is_piece.clone(), torch.Generator().manual_seed(1))
    other = fn(ids.clone(), is_piece.clone(), torch.Generator().manual_seed(2))
    if not (torch.equal(again[0], inputs) and torch.equal(again[1], targets)):
        raise ExerciseWrong("the same generator seed gave a different mask: draw all randomness from `generator`")
    if torch.equal(other[1], targets):
        raise ExerciseWrong("another generator seed gave the same mask: draw all randomness from `generator`")


def check_whole_word_mask(fn: Callable, quiet: bool = False) -> Verdict:
    """Check ``fn(ids (B, T), is_piece (V,), generator) -> (inputs, targets)``: 15% of words, 80/10/10 per token."""
    return run_checker("whole-word masking", fn, _whole_word_check, quiet)


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
        if not float(grad[~keep].abs().max()) <= 1e-12:                    # a NaN gradient fails too
            raise ExerciseWrong("unselected positions receive gradient: only positions with a target contribute")
        return
    if abs(value - float(ref) * n_sel) < 1e-5:
        raise ExerciseWrong("you summed the per-token losses: take the mean over the selected positions")
    entropy = -(logits[keep].softmax(-1) * logits[keep].log_softmax(-1)).sum(-1).mean().detach()
    if abs(value - float(entropy)) < 1e-6:
        raise ExerciseWrong("that is the entropy of the prediction: it never reads the targets, so a model that "
                            "is confidently wrong scores as well as one that is right; score the original token")
    if abs(value - float(ref) * n_sel / n_all) < 1e-6:
        raise ExerciseWrong(f"you divided by all {n_all} positions; divide by the {n_sel} selected ones "
                            f"(the loss should not shrink when fewer tokens are masked)")
    raise ExerciseWrong(f"loss is {value:.4f}, expected {float(ref):.4f}: mean cross-entropy of the original token at "
                        f"positions whose target is not -100")


def check_masked_loss(fn: Callable, quiet: bool = False) -> Verdict:
    """Check ``fn(logits (B, T, V), targets (B, T) with -100) -> scalar`` masked-only mean cross-entropy."""
    return run_checker("masked-only loss", fn, _loss_check, quiet)
