"""The one list of the course's chapters: ``python -m course_lib train NAME``, the benchmarks and the bundle."""

from __future__ import annotations

from . import attention, contrastive, gan, masked_audio, mlm, rnn_lm, transformer_lm
from .base import Chapter

__all__ = ["Chapter", "CHAPTERS", "get_chapter"]

CHAPTERS: dict[str, Chapter] = {c.name: c for c in (
    attention.CHAPTER,         # 01: learning to attend on a toy routing task
    mlm.CHAPTER,               # 02: masked LM pre-training, then fine-tuning with few labels
    gan.CHAPTER,               # 03: DCGAN on MNIST-5k
    contrastive.CHAPTER,       # 04: SimCLR on MNIST-5k
    rnn_lm.CHAPTER,            # 05: character LSTM language model
    transformer_lm.CHAPTER,    # 05: causal Transformer on the same characters
    masked_audio.CHAPTER,      # 06: masked-frame pre-training on spoken keywords
)}


def get_chapter(name: str) -> Chapter:
    """The chapter called ``name``; an unknown name lists the valid ones."""
    if name not in CHAPTERS:
        raise ValueError(f"unknown chapter {name!r}; expected one of: {', '.join(CHAPTERS)}")
    return CHAPTERS[name]
