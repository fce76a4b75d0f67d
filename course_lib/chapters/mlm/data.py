"""Notebook 02's data: Shakespeare's speeches as WordPiece rows, a real label (verse or prose) and a word-order task.

Pre-training rows pack whole speeches of the training plays as ``[CLS] s1 [SEP] s2 [SEP]
... [PAD]`` (BERT's input format, Devlin et al. 2019 §3). The fine-tuning label is read
from the source: in the plays a verse line starts with a capital letter, wrapped prose
lines usually start lower-case. The models read each speech lower-cased with line breaks
replaced by spaces, so the label's own cue is hidden. Test speeches (balanced verse/prose)
come from the validation plays.

The second downstream task asks whether a speech's words are in Shakespeare's order: the
first ``order_words`` words of each speech, half of them shuffled (:func:`shuffled_or_not`).
A shuffled text has the same bag of words as the original, so any bag-of-words classifier
is at chance by construction; only a model of word order can tell them apart.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any
from collections.abc import Sequence

import torch

from ...data import text as text_data
from ...data.budgets import budget_indices
from ...data.text import CLS, PAD, SEP
from .config import Config

__all__ = ["speech_text", "verse_or_prose", "pack_sequences", "encode_texts", "Labelled", "MLMData",
           "labelled_split", "shuffled_or_not", "prepare_data"]

_LETTER = re.compile(r"[A-Za-z]")


def speech_text(speech: text_data.Speech) -> str:
    """What the models read: the lines joined by spaces, lower-cased (no line breaks, no capitals)."""
    return " ".join(speech.lines).lower()


def verse_or_prose(speech: text_data.Speech, min_lines: int = 3, min_words: int = 20) -> str | None:
    """'verse', 'prose' or None (too short / ambiguous), from the source's line structure.

    Verse: every line after the first starts with a capital letter. Prose: at least 30%
    of them start lower-case (a wrapped line). In between: ambiguous, left out.
    """
    if len(speech.lines) < min_lines or speech.n_words < min_words:
        return None
    starts = [_LETTER.search(line) for line in speech.lines[1:]]
    lower = sum(1 for m in starts if m is not None and m.group().islower()) / len(starts)
    return "verse" if lower == 0 else "prose" if lower >= 0.3 else None


def pack_sequences(token_lists: Sequence[Sequence[int]], seq_len: int) -> torch.Tensor:
    """Pack speeches into rows ``[CLS] s1 [SEP] s2 [SEP] ... [PAD]...`` -> (N, seq_len) int64.

    A speech longer than ``seq_len - 2`` tokens is cut; a row is closed when the next
    speech does not fit, and padded with [PAD].
    """
    rows, cur = [], [CLS]
    for toks in token_lists:
        toks = list(toks)[: seq_len - 2]
        if not toks:
            continue
        if len(cur) + len(toks) + 1 > seq_len:
            rows.append(cur + [PAD] * (seq_len - len(cur)))
            cur = [CLS]
        cur += toks + [SEP]
    if len(cur) > 1:
        rows.append(cur + [PAD] * (seq_len - len(cur)))
    return torch.tensor(rows, dtype=torch.long).view(-1, seq_len)


def encode_texts(tokenizer: Any, texts: Sequence[str], seq_len: int) -> torch.Tensor:
    """One row per text: ``[CLS] tokens [SEP] [PAD]...`` (cut to ``seq_len``) -> (N, seq_len) int64."""
    out = torch.full((len(texts), seq_len), PAD, dtype=torch.long)
    for i, enc in enumerate(tokenizer.encode_batch(list(texts))):
        ids = [CLS, *enc.ids[: seq_len - 2], SEP]
        out[i, : len(ids)] = torch.tensor(ids)
    return out


@dataclass
class Labelled:
    """Classification data: ids (N, T) int64, labels (N,) int64 (verse 0 / prose 1; kept 0 / shuffled 1), texts."""

    ids: torch.Tensor
    labels: torch.Tensor
    texts: list[str]

    def subset(self, idx: torch.Tensor) -> Labelled:
        return Labelled(self.ids[idx], self.labels[idx], [self.texts[int(i)] for i in idx])


@dataclass
class MLMData:
    """Everything the chapter reads: tokenizer, packed MLM rows, the verse/prose split and the word-order split."""

    tokenizer: Any
    train_plays: list
    val_plays: list
    train_seqs: torch.Tensor          # (N, seq_len)
    val_seqs: torch.Tensor            # (M, seq_len)
    train_labelled: Labelled          # speeches of training plays with a verse/prose label
    test_labelled: Labelled           # balanced verse/prose speeches of validation plays
    order_train: Labelled             # speeches of training plays, half shuffled (label 1)
    order_test: Labelled              # balanced kept/shuffled speeches of validation plays


def labelled_split(plays: Sequence[text_data.Play]) -> tuple[list[str], list[int]]:
    """(texts, labels) of the speeches of ``plays`` that have a verse(0)/prose(1) label."""
    texts, labels = [], []
    for play in plays:
        for s in play.speeches:
            lab = verse_or_prose(s)
            if lab is not None:
                texts.append(speech_text(s))
                labels.append(int(lab == "prose"))
    return texts, labels


def shuffled_or_not(plays: Sequence[text_data.Play], max_words: int, seed: int, min_words: int = 12
                    ) -> tuple[list[str], list[int]]:
    """(texts, labels): the first ``max_words`` words of each speech of >= ``min_words`` words; label 1 = shuffled.

    Exactly half the speeches (a random half, drawn from ``seed``) have their words put in a random
    order that differs from the original; the others are kept (label 0). Speeches of one repeated
    word cannot be shuffled and are left out.
    """
    kept = [words[:max_words] for play in plays for s in play.speeches
            if len(words := speech_text(s).split()) >= min_words and len(set(words[:max_words])) > 1]
    rng = random.Random(seed)
    shuffled = set(rng.sample(range(len(kept)), len(kept) // 2))
    texts, labels = [], []
    for i, words in enumerate(kept):
        if i in shuffled:
            order = list(words)
            while order == words:
                rng.shuffle(order)
            words = order
        texts.append(" ".join(words))
        labels.append(int(i in shuffled))
    return texts, labels


_DATA: dict[tuple, MLMData] = {}


def prepare_data(cfg: Config) -> MLMData:
    """Plays split by play; tokenizer trained on training plays only; packed rows; labelled speeches.

    Kept in memory per (vocab_size, row lengths, word-order settings, seed), so re-running a cell is quick.
    """
    key = (cfg.data.vocab_size, cfg.data.seq_len, cfg.data.ft_seq_len, cfg.study.order_words, cfg.study.order_test,
           cfg.train.seed)
    if key not in _DATA:
        _DATA[key] = _prepare_data(*key)
    return _DATA[key]


def _prepare_data(vocab_size: int, seq_len: int, ft_seq_len: int, order_words: int, order_test: int, seed: int
                  ) -> MLMData:
    train_plays, val_plays = text_data.split_by_play(text_data.load_plays())
    train_texts = [speech_text(s) for p in train_plays for s in p.speeches]
    tokenizer = text_data.train_subword_tokenizer(train_texts, vocab_size)
    val_texts = [speech_text(s) for p in val_plays for s in p.speeches]
    train_seqs = pack_sequences([e.ids for e in tokenizer.encode_batch(train_texts)], seq_len)
    val_seqs = pack_sequences([e.ids for e in tokenizer.encode_batch(val_texts)], seq_len)
    tr_texts, tr_labels = labelled_split(train_plays)
    te_texts, te_labels = labelled_split(val_plays)
    labels = torch.tensor(te_labels)
    g = torch.Generator().manual_seed(seed)                      # balance the test set: all prose, as many verse
    prose, verse = torch.nonzero(labels == 1).flatten(), torch.nonzero(labels == 0).flatten()
    verse = verse[torch.randperm(len(verse), generator=g)[: len(prose)]]
    keep = torch.cat([prose, verse]).sort().values
    test = Labelled(encode_texts(tokenizer, te_texts, ft_seq_len), labels, te_texts).subset(keep)
    train = Labelled(encode_texts(tokenizer, tr_texts, ft_seq_len), torch.tensor(tr_labels), tr_texts)
    o_texts, o_labels = shuffled_or_not(train_plays, order_words, seed)
    order_train = Labelled(encode_texts(tokenizer, o_texts, ft_seq_len), torch.tensor(o_labels), o_texts)
    o_texts, o_labels = shuffled_or_not(val_plays, order_words, seed + 1)
    pool = Labelled(encode_texts(tokenizer, o_texts, ft_seq_len), torch.tensor(o_labels), o_texts)
    order = pool.subset(budget_indices(pool.labels, order_test // 2, g).sort().values)   # balanced, order_test speeches
    return MLMData(tokenizer, train_plays, val_plays, train_seqs, val_seqs, train, test, order_train, order)
