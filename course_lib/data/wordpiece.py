"""A WordPiece vocabulary learned deterministically (byte-pair merges, ties broken by the pair's text).

The ``tokenizers`` library's ``WordPieceTrainer`` breaks ties between equally frequent
pairs by internal ids that depend on hash-map order, so two builds from the same text
give different vocabularies (about one token in the set and ~9% of the ids differ).
A cached tokenizer and the checkpoints trained with it must agree, so the course
learns the vocabulary here, in a fixed order, and leaves normalising, pre-tokenising
and encoding to the library.

The learner is the usual one (Sennrich et al. 2016, with WordPiece's ``##`` marks):
start from characters, ``w = c_1 ##c_2 … ##c_n``; repeatedly merge the most frequent
adjacent pair (a, b) into ``a + b.removeprefix("##")``; stop at ``vocab_size``
tokens or when no pair occurs twice. Among equally frequent pairs the one whose
text ``(a, b)`` sorts first wins, so the result depends only on the word counts.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from typing import Iterable, Mapping, Sequence

__all__ = ["learn_wordpiece_vocab", "count_words"]

Pair = tuple[str, str]


def count_words(texts: Iterable[str], normalize, pre_tokenize) -> Counter:
    """Word counts after the tokenizer's own normaliser and pre-tokeniser (``str -> str``, ``str -> list``)."""
    counts: Counter = Counter()
    for text in texts:
        counts.update(word for word, _span in pre_tokenize(normalize(text)))
    return counts


def _pairs(symbols: Sequence[str]) -> Iterable[Pair]:
    return zip(symbols, symbols[1:])


def learn_wordpiece_vocab(word_counts: Mapping[str, int], vocab_size: int,
                          special_tokens: Sequence[str] = ()) -> list[str]:
    """Tokens in id order: ``special_tokens``, word-initial characters, ``##`` characters, then merges.

    Deterministic: the same counts give the same list, whatever the dict order.
    """
    if vocab_size < len(special_tokens):
        raise ValueError(f"vocab_size ({vocab_size}) is smaller than the {len(special_tokens)} special tokens")
    words = sorted(w for w, c in word_counts.items() if w and c > 0)
    freq = [word_counts[w] for w in words]
    split = [[w[0]] + ["##" + ch for ch in w[1:]] for w in words]         # each word as its symbols
    alphabet = sorted({s for symbols in split for s in symbols}, key=lambda s: (s.startswith("##"), s))
    vocab = list(special_tokens) + [s for s in alphabet if s not in special_tokens]
    known = set(vocab)

    pair_count: Counter = Counter()
    where: defaultdict[Pair, set[int]] = defaultdict(set)                  # pair -> words that contain it
    for i, symbols in enumerate(split):
        for pair in _pairs(symbols):
            pair_count[pair] += freq[i]
            where[pair].add(i)
    heap = [(-c, p) for p, c in pair_count.items()]                       # max count first, then by text
    heapq.heapify(heap)

    while len(vocab) < vocab_size and heap:
        neg, pair = heapq.heappop(heap)
        if pair_count.get(pair, 0) != -neg:                                # stale entry: re-push the true count
            if pair_count.get(pair, 0) > 0:
                heapq.heappush(heap, (-pair_count[pair], pair))
            continue
        if -neg < 2:
            break
        a, b = pair
        merged = a + b.removeprefix("##")
        if merged not in known:                                            # two pairs can spell one token
            known.add(merged)
            vocab.append(merged)
        for i in sorted(where.pop(pair)):
            old = split[i]
            for p in _pairs(old):
                pair_count[p] -= freq[i]
            new, k = [], 0
            while k < len(old):
                if k + 1 < len(old) and old[k] == a and old[k + 1] == b:
                    new.append(merged)
                    k += 2
                else:
                    new.append(old[k])
                    k += 1
            split[i] = new
            touched = set(_pairs(new))
            for p in _pairs(new):
                pair_count[p] += freq[i]
            for p in touched:
                where[p].add(i)
                heapq.heappush(heap, (-pair_count[p], p))
        pair_count.pop(pair, None)
    return vocab
