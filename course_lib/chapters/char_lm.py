"""What the two character language-model chapters share (notebook 05): corpus, budgets, metrics.

``rnn_lm`` (an LSTM with truncated BPTT) and ``transformer_lm`` (a causal Transformer) read
the same characters, split by play (or a UTF-8 file split 90/10), with the same step
budget and B x T characters per step, so their losses, speed and samples compare
directly. Validation is scored next to exact unigram/bigram/trigram baselines.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..data import text as text_data
from ..data.songci import songci_text
from ..models.ngram import KneserNeyLM, bits, ngram_baselines
from ..sampling import generate
from ..train import TrainResult, TrainSetup
from .summary import run_summary

__all__ = ["CharData", "BUDGETS", "load_corpus", "require_text", "encode_corpus", "LMSetup", "lm_metrics", "lm_summary"]


@dataclass(frozen=True)
class CharData:
    """What the language models read: B streams or windows of T characters per step."""

    batch_size: int = 32               # at equal time 32 beat 64 for both LMs (benchmarks/quality_per_second.md)
    seq_len: int = 128
    eval_chars: int = 200_000          # validation characters scored
    text_file: str | None = None       # None: Shakespeare's plays, split by play; "songci": the Song ci shipped


# the budgets both LM chapters share, per profile (each chapter adds its model sizes)
BUDGETS: dict[str, dict[str, Any]] = {
    "smoke": {"data.batch_size": 32, "data.seq_len": 64, "data.eval_chars": 20_000, "train.steps": 150},
    "class": {},
    "full": {"data.batch_size": 128, "data.seq_len": 256, "data.eval_chars": 729_000, "train.steps": 3000},
}


BUILTIN_TEXTS = {"songci": songci_text}     # texts that ship with the course, by the name --text takes


def load_corpus(text_file: str | None = None) -> tuple[str, str]:
    """(train_text, val_text): the plays split by play, or a UTF-8 file (or a text in ``BUILTIN_TEXTS``) split 90/10.

    A file is split at the first newline after 90% of its characters (or at 90%
    exactly if there is none), so validation is the unseen final tenth.
    """
    if text_file is None:
        train, val = text_data.split_by_play(text_data.load_plays())
        return text_data.plays_to_text(train), text_data.plays_to_text(val)
    if text_file in BUILTIN_TEXTS:
        return split_text(BUILTIN_TEXTS[text_file]())
    path = Path(text_file)
    if not path.is_file():
        raise FileNotFoundError(f"--text expects a UTF-8 text file; {path} does not exist")
    warn_if_too_large(path.stat().st_size)
    try:
        full = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text ({err})") from err
    if not full.strip():
        raise ValueError(f"--text: {path} is empty (or only white space); give a UTF-8 text file to learn from "
                         f"(the message after a short one says how many characters the configuration needs)")
    return split_text(full)


def split_text(full: str) -> tuple[str, str]:
    """The first 90% (to the next newline) trains, the rest validates."""
    cut = int(0.9 * len(full))
    newline = full.find("\n", cut)
    cut = newline + 1 if 0 <= newline < len(full) - 100 else cut
    return full[:cut], full[cut:]


BYTES_PER_CHAR = 16   # measured peak ~9 B per character (20 MB file: text, compact ids, n-gram counts), with margin


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), or None if unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def warn_if_too_large(n_bytes: int) -> None:
    """Warn, before any work, when a text of ``n_bytes`` would likely not fit in the available memory."""
    free = available_memory()
    if free is not None and n_bytes * BYTES_PER_CHAR > free:
        warnings.warn(f"a {n_bytes / 1e6:,.0f} MB text needs about {n_bytes * BYTES_PER_CHAR / 2**30:.1f} GiB "
                      f"(~{BYTES_PER_CHAR} bytes per character) and only {free / 2**30:.1f} GiB is available; "
                      f"use a shorter file", RuntimeWarning, stacklevel=3)


def require_text(train_ids: torch.Tensor, val_ids: torch.Tensor, data: CharData, need_train: int,
                 need_val: int) -> None:
    """Raise a clear error, before any training, when a split is too short for this configuration.

    For a ``--text`` file it also says how long the file must be (90% trains, 10% validates).
    """
    if len(train_ids) >= need_train and len(val_ids) >= need_val:
        return
    source = f"the file {data.text_file}" if data.text_file else "the plays"
    file_hint = (f"; use a file of at least {max(math.ceil(need_train / 0.9), math.ceil(need_val / 0.1)):,} "
                 f"characters" if data.text_file else "")
    raise ValueError(f"{source} gives {len(train_ids):,} training and {len(val_ids):,} validation characters; "
                     f"batch_size={data.batch_size}, seq_len={data.seq_len} need at least {need_train:,} and "
                     f"{need_val:,}{file_hint}")


def encode_corpus(data: CharData) -> tuple[text_data.CharVocab, torch.Tensor, torch.Tensor]:
    """Vocabulary from the training text; (vocab, train ids (N,), the first ``eval_chars`` validation ids (M,)).

    Training ids are stored compactly (uint8 for up to 256 distinct characters, int16 up to
    32,768): 1-2 bytes per character instead of 8; batches are widened to int64 as they are read.
    """
    train_text, val_text = load_corpus(data.text_file)
    vocab = text_data.CharVocab.from_text(train_text)
    train_ids = vocab.encode(train_text, text_data.compact_dtype(len(vocab)))
    del train_text
    return vocab, train_ids, vocab.encode(val_text[: data.eval_chars])


@dataclass
class LMSetup(TrainSetup):
    """A character LM ready for :func:`course_lib.train.fit`, with its vocabulary and encoded text."""

    vocab: text_data.CharVocab | None = None
    train_ids: torch.Tensor | None = None      # (N,) compact integer ids (see encode_corpus)
    val_ids: torch.Tensor | None = None        # (M,) int64


def lm_metrics(nats: float) -> dict[str, float]:
    """Validation loss in nats/char, bits/char (nats / ln 2) and perplexity (e^nats)."""
    return {"val_nats_per_char": nats, "val_bits_per_char": bits(nats), "val_perplexity": math.exp(nats)}


SAMPLE_CHARS, SAMPLE_TEMPERATURE, SAMPLE_TOP_K = 200, 0.8, 40


def lm_sample(setup: LMSetup, seed: int = 0) -> str:
    """``SAMPLE_CHARS`` characters sampled at temperature 0.8 from the top 40, after the validation text's first
    character. Top-k matters for large alphabets: the thousands of rare characters of a Chinese text would
    otherwise share enough probability to scatter noise through the sample."""
    prompt = setup.val_ids[:1].long()
    ids = generate(setup.model, prompt, SAMPLE_CHARS, SAMPLE_TEMPERATURE, SAMPLE_TOP_K, seed)
    return setup.vocab.decode(ids.tolist())


def lm_summary(chapter: str, cfg: Any, device: torch.device, result: TrainResult, started: float, setup: LMSetup,
               **extra: Any) -> dict[str, Any]:
    """The ``metrics.json`` dict of a character LM run: n-gram baselines (add-k, and interpolated Kneser-Ney,
    which stays strong on a large alphabet where add-k over-smooths) and a sample of the model's text."""
    baselines = ngram_baselines(setup.train_ids, setup.val_ids, len(setup.vocab))
    baselines["kneser_ney_3gram"] = KneserNeyLM(3, len(setup.vocab)).fit(setup.train_ids).nll(setup.val_ids)
    extra.setdefault("sample", {"text": lm_sample(setup, cfg.train.seed), "temperature": SAMPLE_TEMPERATURE,
                                "top_k": SAMPLE_TOP_K})
    return run_summary(
        chapter, cfg, device, result, started, unit="chars/s",
        metrics={k: round(v, 4) for k, v in result.final.items()},
        baselines={f"{k}_nats_per_char": round(v, 4) for k, v in baselines.items()},
        data={"source": cfg.data.text_file or "Shakespeare's plays (shipped with course_lib), split by play",
              "train_chars": len(setup.train_ids),
              "val_chars": len(setup.val_ids), "vocab_size": len(setup.vocab)},
        **extra)
