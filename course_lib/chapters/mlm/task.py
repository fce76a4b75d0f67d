"""Masked-LM pre-training (Devlin et al. 2019, BERT §3.1), as notebook 02 trains and scores it.

Random packed rows per step; BERT masking (15% of real tokens; 80% [MASK], 10% random,
10% kept) inside ``loss`` with torch's global RNG, so a resume is exact; the MLM head and
the loss at the masked positions only. Evaluation masks the validation rows with a fixed
generator and is compared with a unigram-frequency baseline, whose log-probabilities
are also the decoder's starting bias ("init well": Karpathy, "A recipe for training
neural networks", 2019).
"""

from __future__ import annotations

from typing import Any
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...batching import map_batches, random_rows
from ...checkpoints import tensor_digest
from ...data.text import CLS, MASK, N_SPECIAL, PAD, SEP
from ...models.mlm import MaskedLM
from ...objectives.mlm import IGNORE_INDEX, mask_tokens, masked_lm_loss
from ...train import Task
from .config import Config

__all__ = ["mask", "MLMTask", "eval_masks", "evaluate_mlm", "copy_accuracy", "unigram_log_prior", "unigram_baseline",
           "fill_in_blank"]

EVAL_SEED, EVAL_BATCH = 1234, 128


def mask(ids: torch.Tensor, cfg: Config, generator: torch.Generator | None = None
         ) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking of ids (B, T) with ``cfg.mlm``'s rates -> (inputs (B, T), targets (B, T))."""
    m = cfg.mlm
    return mask_tokens(ids, cfg.data.vocab_size, mask_id=MASK, select_prob=m.select_prob, mask_frac=m.mask_frac,
                       random_frac=m.random_frac, generator=generator)


class MLMTask(Task):
    """Random rows of packed speeches; BERT masking inside ``loss``; masked-only head and loss.

    ``head="full"`` runs the MLM head on every position (same loss, slower: for timing);
    ``loss_on="all"`` scores every real position (the common mistake, for the notebook).
    Reads ``cfg.data``, ``cfg.mlm`` and ``cfg.train.seed`` (never ``cfg.study``).
    """

    def __init__(self, train_seqs: torch.Tensor, val_seqs: torch.Tensor, cfg: Config, head: str = "masked",
                 loss_on: str = "masked"):
        if head not in ("masked", "full") or loss_on not in ("masked", "all"):
            raise ValueError(f"head must be 'masked'|'full' and loss_on 'masked'|'all', got {head!r}, {loss_on!r}")
        if train_seqs.ndim != 2 or train_seqs.dtype != torch.long:
            raise ValueError(f"train_seqs must be int64 (N, T), got {tuple(train_seqs.shape)} {train_seqs.dtype}")
        self.train_seqs, self.val_seqs, self.cfg = train_seqs, val_seqs[: cfg.data.eval_sequences], cfg
        self.tokens_digest = tensor_digest(train_seqs)          # changes with the tokenizer's vocabulary
        self.head, self.loss_on = head, loss_on

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        idx = random_rows(len(self.train_seqs), self.cfg.data.batch_size, self.cfg.train.seed, step)
        return {"ids": self.train_seqs[idx]}                                 # (B, T)

    def items(self, batch: Mapping[str, torch.Tensor]) -> int:
        return int(batch["ids"].numel())

    def loss(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        ids = batch["ids"]
        inputs, targets = mask(ids, self.cfg)                                # (B, T), (B, T)
        if self.loss_on == "all":
            targets = ids.masked_fill(ids == PAD, IGNORE_INDEX)              # the mistake: score every token
        if self.head == "full":
            return masked_lm_loss(model(inputs, ids != PAD), targets)        # (B, T, V) logits
        positions = targets != IGNORE_INDEX
        return masked_lm_loss(model(inputs, ids != PAD, positions), targets[positions])  # (N, V), (N,)

    def evaluate(self, model: nn.Module, step: int) -> dict[str, float]:
        return evaluate_mlm(model, self.val_seqs, self.cfg)

    def signature(self) -> dict[str, Any]:
        d = self.cfg.data                                # the evaluation size does not change the weights
        return {"data": {"vocab_size": d.vocab_size, "seq_len": d.seq_len, "batch_size": d.batch_size},
                "mlm": self.cfg.mlm, "head": self.head, "loss_on": self.loss_on, "tokens": self.tokens_digest}


def eval_masks(seqs: torch.Tensor, cfg: Config, seed: int = EVAL_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed evaluation masking of ``seqs`` (N, T): (inputs, targets), drawn slice by slice of 128 rows."""
    g = torch.Generator().manual_seed(seed)
    inputs, targets = zip(*(mask(seqs[s:s + EVAL_BATCH], cfg, g) for s in range(0, len(seqs), EVAL_BATCH)))
    return torch.cat(inputs), torch.cat(targets)


def evaluate_mlm(model: MaskedLM, seqs: torch.Tensor, cfg: Config, seed: int = EVAL_SEED) -> dict[str, float]:
    """Masked-token accuracy, nats and perplexity on ``seqs`` masked with a fixed generator."""
    inputs, targets = eval_masks(seqs, cfg, seed)

    def sums(x: torch.Tensor) -> tuple[torch.Tensor, ...]:  # x (b, 2, T): inputs, targets -> one row of sums
        inp, tgt = x[:, 0], x[:, 1]
        pos = tgt != IGNORE_INDEX
        logits = model(inp, inp != PAD, pos).float()                         # (N, V); [PAD] is never replaced
        y = tgt[pos]
        return ((logits.argmax(-1) == y).sum().view(1), F.cross_entropy(logits, y, reduction="sum").view(1),
                pos.sum().view(1))

    correct, nats, count = map_batches(model, sums, torch.stack([inputs, targets], 1), EVAL_BATCH)
    n, total = int(count.sum()), sum(nats.tolist())
    return {"masked_accuracy": int(correct.sum()) / n, "masked_nats": total / n,
            "masked_perplexity": float(np.exp(total / n)), "masked_tokens": float(n)}


def copy_accuracy(model: MaskedLM, seqs: torch.Tensor) -> float:
    """With nothing masked (as at fine-tuning time), how often the MLM head names each visible real token."""
    def counts(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pos = ids >= N_SPECIAL
        return (model(ids, ids != PAD, pos).argmax(-1) == ids[pos]).sum().view(1), pos.sum().view(1)

    correct, count = map_batches(model, counts, seqs, EVAL_BATCH)
    return int(correct.sum()) / int(count.sum())


def _unigram(train_seqs: torch.Tensor, vocab_size: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(counts (V,), add-one smoothed probabilities (V,)) of the ordinary training tokens."""
    counts = torch.bincount(train_seqs.flatten(), minlength=vocab_size).to(dtype)
    counts[:N_SPECIAL] = 0
    return counts, (counts + 1) / (counts + 1)[N_SPECIAL:].sum()


def unigram_log_prior(train_seqs: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """(V,) log p(token) over the training tokens, add-one smoothed; special tokens get log 1e-6.

    The MLM decoder's initial bias, so that step 0 already predicts the unigram distribution
    and training spends its steps on context.
    """
    _, probs = _unigram(train_seqs, vocab_size, torch.float32)
    probs[:N_SPECIAL] = 1e-6
    return probs.log()


def unigram_baseline(train_seqs: torch.Tensor, val_seqs: torch.Tensor, cfg: Config, seed: int = EVAL_SEED
                     ) -> dict[str, float]:
    """Predict every masked token from training-token frequencies alone (the targets of :func:`evaluate_mlm`)."""
    counts, probs = _unigram(train_seqs, cfg.data.vocab_size, torch.float64)
    probs[:N_SPECIAL] = 0
    _, targets = eval_masks(val_seqs, cfg, seed)
    y = targets[targets != IGNORE_INDEX]
    nats = float(-probs[y].log().mean())
    return {"masked_accuracy": float((y == int(counts.argmax())).double().mean()), "masked_nats": nats,
            "masked_perplexity": float(np.exp(nats))}


def fill_in_blank(model: MaskedLM, tokenizer: Any, text: str, k: int = 5) -> list[list[tuple[str, float]]]:
    """Top-k (token, probability) for each [MASK] in ``text`` (lower-cased, like training)."""
    ids = [CLS, *tokenizer.encode(text.replace("[MASK]", " [MASK] ").lower().replace("[mask]", "[MASK]")).ids, SEP]
    if MASK not in ids:
        raise ValueError(f"text must contain [MASK], got {text!r}")
    x = torch.tensor([ids[: model.cfg.max_len]])                              # (1, T)
    probs = map_batches(model, lambda x: model(x, None, x == MASK).float().softmax(-1), x)   # (n_masks, V)
    top = probs.topk(k, dim=-1)
    return [[(tokenizer.id_to_token(int(i)), float(p)) for p, i in zip(ps, ix)] for ps, ix in zip(*top)]
