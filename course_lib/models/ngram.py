"""n-gram language models with add-k smoothing, computed exactly by counting.

P(c | context) = (count(context, c) + k) / (count(context) + k V), where the context
is the previous n-1 symbols and V the vocabulary size. Over characters these are the
honest baselines for every language model of the course (notebook 05, ``train rnn_lm``);
over WordPiece tokens, the counting baseline of notebook 02's word-order task.
"""

from __future__ import annotations

import math

import torch

__all__ = ["NGramLM", "ngram_baselines"]


COUNT_SLICE = 1 << 22                      # ids counted at a time by NGramLM.fit


class NGramLM:
    """An order-``n`` model over ids in [0, V) (characters or tokens). ``n=1`` is the unigram model."""

    def __init__(self, n: int, vocab_size: int, k: float = 0.1):
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if k <= 0:
            raise ValueError(f"add-k smoothing needs k > 0 (k = 0 gives log 0 on unseen n-grams), got {k}")
        if vocab_size ** n >= 2**63:
            raise ValueError(f"an order-{n} model over {vocab_size} symbols does not fit int64 n-gram indices")
        self.n, self.V, self.k = n, vocab_size, k
        # only the n-grams and contexts that occur, sorted by their base-V index: memory grows with the
        # text, not with V**n (a Chinese text's ~3,000 characters would need 3,000**3 dense trigram counts)
        self.grams: torch.Tensor | None = None           # (G,) int64 sorted n-gram indices
        self.gram_counts: torch.Tensor | None = None     # (G,) float64
        self.contexts: torch.Tensor | None = None        # (C,) int64 sorted context indices (n-gram // V)
        self.context_totals: torch.Tensor | None = None  # (C,) float64

    def _flat_index(self, ids: torch.Tensor) -> torch.Tensor:
        """(N,) ids -> (N - n + 1,) index of each n-gram in base V."""
        idx = torch.zeros(len(ids) - self.n + 1, dtype=torch.long)
        for offset in range(self.n):
            idx = idx * self.V + ids[offset:len(ids) - self.n + 1 + offset]
        return idx

    def _check(self, ids: torch.Tensor) -> None:
        if ids.ndim != 1 or ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
            raise ValueError(f"expected a 1-D integer tensor of ids, got {ids.dtype} shape {tuple(ids.shape)}")
        if len(ids) < self.n:
            raise ValueError(f"need at least n={self.n} ids, got {len(ids)}")
        if int(ids.min()) < 0 or int(ids.max()) >= self.V:
            raise ValueError(f"ids must lie in [0, {self.V}), got [{int(ids.min())}, {int(ids.max())}]")

    def fit(self, ids: torch.Tensor) -> NGramLM:
        """Count the n-grams of ``ids`` (N,) int64 (sparse: only those seen)."""
        self._check(ids)
        parts = []                         # unique n-grams per slice: memory ~ a slice + the distinct n-grams
        for s in range(0, len(ids) - self.n + 1, COUNT_SLICE):
            parts.append(torch.unique(self._flat_index(ids[s: s + COUNT_SLICE + self.n - 1]), return_counts=True))
        grams, where = torch.unique(torch.cat([g for g, _ in parts]), return_inverse=True)   # (G,)
        counts = torch.zeros(len(grams), dtype=torch.long).index_add_(0, where, torch.cat([c for _, c in parts]))
        contexts, which = torch.unique(grams // self.V, return_inverse=True)          # (C,), (G,)
        self.grams, self.gram_counts = grams, counts.double()
        self.contexts = contexts
        self.context_totals = torch.zeros(len(contexts), dtype=torch.float64).index_add_(0, which, self.gram_counts)
        return self

    def log_probs(self, ids: torch.Tensor) -> torch.Tensor:
        """log P(ids[t] | the n-1 before it) for t = n-1 ... N-1: (N - n + 1,) float64."""
        if self.grams is None:
            raise RuntimeError("call fit() before log_probs() or nll()")
        self._check(ids)
        grams = self._flat_index(ids)                                                 # (M,)
        count = _lookup(grams, self.grams, self.gram_counts)                          # count(context, c)
        total = _lookup(grams // self.V, self.contexts, self.context_totals)          # count(context)
        return ((count + self.k) / (total + self.k * self.V)).log()

    def nll(self, ids: torch.Tensor) -> float:
        """Mean negative log-likelihood in nats per predicted character."""
        return float(-self.log_probs(ids).mean())


def _lookup(keys: torch.Tensor, table: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``values`` at each key's position in the sorted ``table``; 0 for keys it does not hold."""
    pos = torch.searchsorted(table, keys).clamp_max(len(table) - 1)
    return torch.where(table[pos] == keys, values[pos], torch.zeros((), dtype=values.dtype))


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
