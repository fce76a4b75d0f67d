"""n-gram language models computed exactly by counting: add-k and interpolated Kneser-Ney.

Add-k: P(c | context) = (count(context, c) + k) / (count(context) + k V), where the context
is the previous n-1 symbols and V the vocabulary size. Over characters these are the
honest baselines for every language model of the course (notebook 05, ``train rnn_lm``);
over WordPiece tokens, the counting baseline of notebook 02's word-order task.
:class:`KneserNeyLM` is the strong count-based baseline (Chen & Goodman 1999, eq. 9-10).
"""

from __future__ import annotations

import math

import torch

__all__ = ["NGramLM", "KneserNeyLM", "ngram_baselines"]


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


class KneserNeyLM:
    """Interpolated Kneser-Ney of order ``n`` over ids in [0, V), one absolute discount per order.

    Highest order, with c(h, c) the count of context h followed by c, N1+(h .) the number of distinct
    symbols seen after h, and h' the context without its oldest symbol:

        P(c | h) = max(c(h, c) - D, 0) / c(h) + D N1+(h .) / c(h) * P(c | h')      (P(c | h') alone if c(h) = 0)

    Lower orders use the same formula on *continuation* counts N1+(. h' c), the number of distinct
    symbols seen before h' c (how many contexts a pattern completes, not how often it occurs), and
    order 1 interpolates with the uniform 1 / V, so every symbol keeps some probability. Each order's
    discount is Ney's estimate D = n1 / (n1 + 2 n2) from the numbers n1, n2 of its counts equal to 1 and 2.
    """

    def __init__(self, n: int, vocab_size: int):
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if vocab_size ** n >= 2**63:
            raise ValueError(f"an order-{n} model over {vocab_size} symbols does not fit int64 n-gram indices")
        self.n, self.V = n, vocab_size
        self.levels: list[dict[str, torch.Tensor | float]] = []   # per order m = 1..n: grams, counts, contexts, ...

    def fit(self, ids: torch.Tensor) -> KneserNeyLM:
        """Count ``ids`` (N,): raw counts for order n, continuation counts below it, and each order's discount."""
        top = NGramLM(self.n, self.V).fit(ids)
        grams, counts = top.grams, top.gram_counts                    # (G,) sorted n-gram indices, raw counts
        levels = []
        for m in range(self.n, 0, -1):
            levels.append(self._level(grams, counts, m))
            if m > 1:                                                  # continuation counts of the (m-1)-grams
                grams, counts = torch.unique(grams % self.V ** (m - 1), return_counts=True)
                counts = counts.double()                               # N1+(. g): distinct symbols before g
        self.levels = levels[::-1]                                     # order 1 first
        return self

    def _level(self, grams: torch.Tensor, counts: torch.Tensor, m: int) -> dict[str, torch.Tensor | float]:
        n1, n2 = float((counts == 1).sum()), float((counts == 2).sum())
        discount = n1 / (n1 + 2 * n2) if n1 > 0 else 0.5
        contexts, which = torch.unique(grams // self.V, return_inverse=True)            # (C,), (G,)
        totals = torch.zeros(len(contexts), dtype=torch.float64).index_add_(0, which, counts)
        types = torch.zeros(len(contexts), dtype=torch.float64).index_add_(0, which, torch.ones_like(counts))
        return {"m": m, "grams": grams, "counts": counts, "contexts": contexts, "totals": totals,
                "types": types, "discount": discount}

    def log_probs(self, ids: torch.Tensor) -> torch.Tensor:
        """log P(ids[t] | the n-1 before it) for t = n-1 ... N-1: (N - n + 1,) float64."""
        if not self.levels:
            raise RuntimeError("call fit() before log_probs() or nll()")
        NGramLM(self.n, self.V)._check(ids)
        full = NGramLM(self.n, self.V)._flat_index(ids)                # (M,) n-gram indices, oldest symbol first
        p = torch.full(full.shape, 1.0 / self.V, dtype=torch.float64)  # below order 1: uniform
        for level in self.levels:
            gram = full % self.V ** level["m"]                         # the last m symbols
            count = _lookup(gram, level["grams"], level["counts"])
            total = _lookup(gram // self.V, level["contexts"], level["totals"])
            types = _lookup(gram // self.V, level["contexts"], level["types"])
            d = level["discount"]
            seen = total > 0
            interpolated = ((count - d).clamp_min(0) + d * types * p) / total.clamp_min(1e-300)
            p = torch.where(seen, interpolated, p)
        return p.log()

    def nll(self, ids: torch.Tensor) -> float:
        """Mean negative log-likelihood in nats per predicted symbol."""
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
