"""Masked language modelling: BERT's 15% / 80-10-10 masking and the masked-only loss.

Devlin et al., 2019, "BERT: Pre-training of Deep Bidirectional Transformers for Language
Understanding", §3.1 "Task #1: Masked LM" and Appendix C.2:

* select each real token (not [PAD], [CLS], [SEP], ...) with probability p = 0.15;
* of the selected tokens, 80% become [MASK], 10% a random (non-special) token, 10% stay;
* the loss is the cross-entropy of the original token at the *selected* positions only:

      L = -1/|M| sum_{i in M} log p(x_i | x_tilde)        M = selected positions

The 10% random / 10% unchanged exist because [MASK] never appears at fine-tuning
time: the model must build a good representation of every token it sees, not only
of [MASK]. Targets use ``IGNORE_INDEX`` (-100) at unselected positions, like
``F.cross_entropy(ignore_index=-100)``. Used by notebook 02 and ``course_lib.chapters.mlm``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..data.text import MASK, N_SPECIAL

__all__ = ["IGNORE_INDEX", "mask_tokens", "masked_lm_loss", "select_masked"]

IGNORE_INDEX = -100


def mask_tokens(ids: torch.Tensor, vocab_size: int, *, mask_id: int = MASK,
                special_ids: Sequence[int] = tuple(range(N_SPECIAL)),
                select_prob: float = 0.15, mask_frac: float = 0.8, random_frac: float = 0.1,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking of ids (B, T) int64 -> (inputs (B, T), targets (B, T)).

    Each position whose id is not in ``special_ids`` is selected with probability
    ``select_prob``; selected positions get [MASK] (``mask_frac``), a random token
    drawn uniformly from the non-special ids (``random_frac``) or stay unchanged
    (the rest). ``targets`` holds the original id at selected positions and
    ``IGNORE_INDEX`` elsewhere. Randomness: ``generator``, else torch's global RNG.
    Special ids must be the lowest ids (0 .. n_special-1), as in the course tokenizer.
    """
    if not isinstance(ids, torch.Tensor) or ids.dtype != torch.long or ids.ndim != 2:
        raise ValueError(f"ids must be an int64 tensor (B, T), got {getattr(ids, 'dtype', type(ids))} "
                         f"{tuple(getattr(ids, 'shape', ()))}")
    if not 0.0 <= select_prob <= 1.0:                         # also False for NaN
        raise ValueError(f"select_prob must be in [0, 1], got {select_prob}")
    if not (mask_frac >= 0 and random_frac >= 0 and mask_frac + random_frac <= 1.0 + 1e-9):
        raise ValueError(f"need mask_frac >= 0, random_frac >= 0 and mask_frac + random_frac <= 1, "
                         f"got {mask_frac} and {random_frac}")
    specials = sorted(set(int(s) for s in special_ids))
    n_special = len(specials)
    if specials != list(range(n_special)) or mask_id not in specials:
        raise ValueError(f"special_ids must be 0..n-1 and contain mask_id={mask_id}, got {special_ids}")
    if vocab_size <= n_special:
        raise ValueError(f"vocab_size={vocab_size} leaves no ordinary tokens after {n_special} special ones")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ValueError(f"ids must be in [0, {vocab_size}), got [{int(ids.min())}, {int(ids.max())}]")
    real = ids >= n_special                                                  # (B, T) maskable tokens
    u = torch.rand(ids.shape, generator=generator, device=ids.device)       # selection draw
    selected = real & (u < select_prob)
    v = torch.rand(ids.shape, generator=generator, device=ids.device)       # 80 / 10 / 10 draw
    to_mask = selected & (v < mask_frac)
    to_random = selected & (v >= mask_frac) & (v < mask_frac + random_frac)
    random_ids = torch.randint(n_special, vocab_size, ids.shape, generator=generator, device=ids.device)
    inputs = ids.masked_fill(to_mask, mask_id)
    inputs = torch.where(to_random, random_ids, inputs)
    targets = ids.masked_fill(~selected, IGNORE_INDEX)
    return inputs, targets


def select_masked(hidden: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gather the selected positions: hidden (B, T, D), targets (B, T) -> (N, D), (N,).

    This is what makes the MLM head cheap: the (D x V) output layer then runs on
    N ~ 0.15 B T rows instead of B T.
    """
    if hidden.ndim != 3 or targets.shape != hidden.shape[:2]:
        raise ValueError(f"expected hidden (B, T, D) and targets (B, T), got {tuple(hidden.shape)} "
                         f"and {tuple(targets.shape)}")
    keep = targets != IGNORE_INDEX                                           # (B, T)
    return hidden[keep], targets[keep]                                       # (N, D), (N,)


def masked_lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the selected positions only (nats per masked token).

    Either logits (B, T, V) with targets (B, T) holding ``IGNORE_INDEX`` at unselected
    positions, or logits (N, V) already gathered at the selected positions with
    targets (N,). A batch with no selected position gives a zero loss (with a graph).
    """
    if logits.ndim == 3 and targets.shape == logits.shape[:2]:
        logits, targets = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)  # (B*T, V), (B*T,)
    elif not (logits.ndim == 2 and targets.shape == logits.shape[:1]):
        raise ValueError(f"expected logits (B, T, V) with targets (B, T), or (N, V) with (N,); got "
                         f"{tuple(logits.shape)} and {tuple(targets.shape)}")
    if targets.dtype != torch.long:
        raise ValueError(f"targets must be int64, got {targets.dtype}")
    if not bool((targets != IGNORE_INDEX).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), targets, ignore_index=IGNORE_INDEX)
