"""Unlabelled speech for pre-training (notebook 06): many synthetic speakers reading phrases of Shakespeare.

Self-supervised pre-training pays when unlabelled speech is far more plentiful than labels. This
pool supplies it offline: each clip is one speaker reading one short phrase (3 to 8 words, cut at
punctuation from the 38 plays of :func:`course_lib.data.text.load_plays`), made by the same
eSpeak NG synthesiser and the same noise and level recipe as the labelled keyword clips
(:func:`course_lib.data.speech.make_clip`), and centre-cropped to one second. A phrase lasts
1.5 to 3 s, so a clip is speech from end to end, where a keyword clip is about half noise.

The pool's speakers are new tuples (accent, variant, rate, pitch, pitch range): every speaker
of the labelled corpus is excluded, so no labelled test speaker is heard in pre-training (accents
and voice variants repeat: there are only 8 accents and 92 variants). Clip ``k`` is drawn with
``default_rng([seed, k])``, so it can be rebuilt alone; two worker processes make the pool in
about 100 s for 28,000 clips on a 2-core machine.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import speech
from .text import load_plays

__all__ = ["PhrasePool", "phrases", "pool_speakers", "make_phrase_clip", "build_phrase_pool"]

MIN_WORDS, MAX_WORDS = 3, 8
_TRIES = 8                      # phrases tried per clip before giving up (a slow voice can overrun eSpeak's buffer)


@dataclass(frozen=True, eq=False)
class PhrasePool:
    """Unlabelled clips: (N, L) int16 audio, the speaker (index into ``speakers``) and phrase of each clip."""

    audio: np.ndarray                       # (N, L) int16, scale 32767
    speaker: np.ndarray                     # (N,) int64
    phrase: np.ndarray                      # (N,) int64 index into phrases()
    speakers: tuple[speech.Speaker, ...]


@lru_cache(maxsize=1)
def phrases() -> tuple[str, ...]:
    """Every distinct phrase of 3 to 8 words in the plays, cut at punctuation, sorted (about 120,000)."""
    out = set()
    for play in load_plays():
        for s in play.speeches:
            for line in s.lines:
                for part in re.split(r"[,;:.!?()\[\]\"]", line):
                    words = part.replace("--", " ").split()
                    if MIN_WORDS <= len(words) <= MAX_WORDS:
                        out.add(" ".join(words))
    return tuple(sorted(out))


def pool_speakers(n: int, seed: int, exclude: frozenset[speech.Speaker] | set[speech.Speaker]) -> list[speech.Speaker]:
    """``n`` distinct speakers drawn as :func:`speech.make_speakers` draws them, none of them in ``exclude``."""
    drawn = speech.make_speakers(n + len(exclude), seed)
    chosen = [s for s in drawn if s not in exclude][:n]
    assert len(chosen) == n                 # make_speakers draws distinct tuples, at most len(exclude) are dropped
    return chosen


def make_phrase_clip(k: int, speaker: speech.Speaker, seed: int, seconds: float = 1.0) -> tuple[np.ndarray, int]:
    """Clip ``k``: (round(seconds·16000),) int16 of ``speaker`` reading a phrase, and the phrase's index.

    The phrase and the noise come from ``default_rng([seed, k])``; a phrase too long for eSpeak's
    buffer at this speaker's rate is replaced by the next draw.
    """
    table, rng = phrases(), np.random.default_rng([seed, k])
    for _ in range(_TRIES):
        index = int(rng.integers(len(table)))
        try:
            clip = speech.make_clip(0, speaker, rng, seconds, words=(table[index],))
        except ValueError:                  # "too long: one utterance must fit in eSpeak's buffer"
            continue
        return np.round(clip * 32767.0).astype(np.int16), index
    raise RuntimeError(f"no phrase of {_TRIES} tried fits eSpeak's buffer for {speaker.voice} at rate {speaker.rate}")


def _make(job: tuple[int, speech.Speaker, int, float]) -> tuple[np.ndarray, int]:
    return make_phrase_clip(*job)


def build_phrase_pool(n_speakers: int, per_speaker: int, seed: int, exclude: frozenset[speech.Speaker],
                      seconds: float = 1.0, workers: int | None = None) -> PhrasePool:
    """Synthesise the pool: clip k is speaker k // per_speaker reading a phrase (``workers`` processes)."""
    if n_speakers < 1 or per_speaker < 1:
        raise ValueError(f"n_speakers and per_speaker must be >= 1, got {n_speakers}, {per_speaker}")
    speakers = pool_speakers(n_speakers, seed, exclude)
    jobs = [(k, speakers[k // per_speaker], seed, seconds) for k in range(n_speakers * per_speaker)]
    workers = max(1, min(workers or os.cpu_count() or 1, 4))
    phrases()                                                   # parsed once, before any fork
    if workers == 1:
        made = [_make(j) for j in jobs]
    else:
        with ProcessPoolExecutor(workers) as pool:
            made = list(pool.map(_make, jobs, chunksize=64))
    audio = np.stack([a for a, _ in made])                      # (N, L) int16
    return PhrasePool(audio, np.repeat(np.arange(n_speakers, dtype=np.int64), per_speaker),
                      np.array([i for _, i in made], np.int64), tuple(speakers))

