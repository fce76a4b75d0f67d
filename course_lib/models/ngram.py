"""Character n-gram language models with add-k smoothing, computed exactly by counting.

P(c | context) = (count(context, c) + k) / (count(context) + k V), where the context
is the previous n-1 characters and V the vocabulary size. These are the honest
baselines for every language model of the course (notebook 05, ``train rnn_lm``).
"""

from __future__ import annotations

import math

import torch

__all__ = ["NGramLM", "ngram_baselines"]


class NGramLM:
    """An order-``n`` character model over ids in [0, V). ``n=1`` is the unigram model."""

    def __init__(self, n: int, vocab_size: int, k: float = 0.1):
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if k <= 0:
            raise ValueError(f"add-k smoothing needs k > 0 (k = 0 gives log 0 on unseen n-grams), got {k}")
        self.n, self.V, self.k = n, vocab_size, k
        self.counts: torch.Tensor | None = None   # (V**(n-1) * V,) flat counts

    def _flat_index(self, ids: torch.Tensor) -> torch.Tensor:
        """(N,) ids -> (N - n + 1,) index of each n-gram in base V."""
        idx = torch.zeros(len(ids) - self.n + 1, dtype=torch.long)
        for offset in range(self.n):
            idx = idx * self.V + ids[offset:len(ids) - self.n + 1 + offset]
        return idx

    def _check(self, ids: torch.Tensor) -> None:
        if ids.ndim != 1 or ids.dtype != torch.long:
            raise ValueError(f"expected a 1-D int64 tensor of ids, got {ids.dtype} shape {tuple(ids.shape)}")
        if len(ids) < self.n:
            raise ValueError(f"need at least n={self.n} ids, got {len(ids)}")
        if int(ids.min()) < 0 or int(ids.max()) >= self.V:
            raise ValueError(f"ids must lie in [0, {self.V}), got [{int(ids.min())}, {int(ids.max())}]")

    def fit(self, ids: torch.Tensor) -> "NGramLM":
        self._check(ids)
        self.counts = torch.bincount(self._flat_index(ids), minlength=self.V ** self.n).double()
        return self

    def nll(self, ids: torch.Tensor) -> float:
        """Mean negative log-likelihood in nats per predicted character."""
        if self.counts is None:
            raise RuntimeError("call fit() before nll()")
        self._check(ids)
        grams = self._flat_index(ids)                                   # (M,)
        context_totals = self.counts.view(-1, self.V).sum(1)            # (V**(n-1),)
        p = (self.counts[grams] + self.k) / (context_totals[grams // self.V] + self.k * self.V)
        return float(-p.log().mean())


def ngram_baselines(train_ids: torch.Tensor, val_ids: torch.Tensor, vocab_size: int,
                    orders: tuple[int, ...] = (1, 2, 3), k: float = 0.1) -> dict[str, float]:
    """Validation nats/char of unigram, bigram, trigram... models fitted on ``train_ids``.

    All orders are scored on the same predicted characters (those with n_max - 1 of context).
    """
    skip = max(orders) - 1
    names = {1: "unigram", 2: "bigram", 3: "trigram", 4: "4gram", 5: "5gram"}
    out = {}
    for n in orders:
        model = NGramLM(n, vocab_size, k).fit(train_ids)
        out[names.get(n, f"{n}gram")] = model.nll(val_ids[skip - (n - 1):])
    return out


def bits(nats: float) -> float:
    """Convert nats to bits."""
    return nats / math.log(2)
