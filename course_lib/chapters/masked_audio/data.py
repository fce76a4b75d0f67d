"""The spoken-keyword corpus as normalised log-mel frames, cached (notebook 06).

Audio is synthesised by :mod:`course_lib.data.speech` and turned into log-mel features by
:mod:`course_lib.audio`; only the features are cached (float16, ~8 KB a clip: the 200-speaker
``class`` corpus is 31 MB where its 16 kHz int16 audio would be 128 MB). Any clip's audio is
rebuilt alone, in milliseconds, by :func:`clip_audio`. Features are normalised per band with the
mean and standard deviation of the *training* speakers' frames.
"""

from __future__ import annotations

import dataclasses
import io
import time
from dataclasses import dataclass

import numpy as np
import torch

from ...audio import FeatureConfig, band_statistics, log_mel
from ...data import speech, spoken_phrases
from ...data.cache import cached_file, digest_text
from ...data.text import PLAYS_SHA256

__all__ = ["FrameData", "PoolFrames", "load_frames", "load_pool_frames", "heldout_pool_frames", "pretraining_frames",
           "stack_frames", "unstack_frames", "clip_audio", "clip_speaker"]

_DATA: dict = {}


@dataclass(frozen=True, eq=False)
class FrameData:
    """Normalised log-mel frames of each split, with labels and speaker ids."""

    train_x: torch.Tensor            # (N, S, k·F) float32, normalised per band, k frames stacked per step
    train_y: torch.Tensor            # (N,) int64 word index
    train_speaker: torch.Tensor      # (N,) int64
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    mean: torch.Tensor               # (F,) per-band mean of the training frames (before normalising)
    std: torch.Tensor                # (F,)
    train_index: torch.Tensor        # (N,) the clips' indices in the corpus (for clip_audio)
    test_index: torch.Tensor
    words: tuple[str, ...]

    @property
    def n_frames(self) -> int:
        return self.train_x.shape[1]


@dataclass(frozen=True, eq=False)
class PoolFrames:
    """The unlabelled phrase pool as normalised, stacked log-mel frames, and what it cost to make."""

    x: torch.Tensor                  # (P, S, k·F) float32, normalised with the labelled training bands
    speaker: torch.Tensor            # (P,) int64 index into speakers
    phrase: torch.Tensor             # (P,) int64 index into spoken_phrases.phrases()
    speakers: tuple[speech.Speaker, ...]
    nbytes: int                      # size of the cached file
    synth_seconds: float             # when it was built: eSpeak synthesis, and synthesis plus log-mel
    build_seconds: float


def _recipe(n_speakers: int, seed: int, features: FeatureConfig) -> str:
    return repr((n_speakers, seed, dataclasses.astuple(features), speech.KEYWORDS, speech.ACCENTS, speech.VARIANTS))


def _build(n_speakers: int, seed: int, features: FeatureConfig) -> bytes:
    corpus = speech.build_spoken_words(n_speakers, seed)
    feats = []
    for s in range(0, len(corpus.labels), 256):                              # (256, L) clips at a time
        audio = torch.from_numpy(corpus.to_float(np.arange(s, min(s + 256, len(corpus.labels)))))
        feats.append(log_mel(audio, features).half())                        # (256, T, F)
    buf = io.BytesIO()
    np.savez(buf, features=torch.cat(feats).numpy(), labels=corpus.labels, speakers=corpus.speakers,
             split=corpus.split)
    return buf.getvalue()


def stack_frames(x: torch.Tensor, k: int) -> torch.Tensor:
    """(N, T, F) -> (N, T // k, k·F): k consecutive frames side by side (the last T mod k frames dropped)."""
    n, t, f = x.shape
    return x[:, : t // k * k].reshape(n, t // k, k * f)


def unstack_frames(x: torch.Tensor, k: int) -> torch.Tensor:
    """(N, S, k·F) -> (N, S·k, F), the inverse of :func:`stack_frames` (for plotting)."""
    n, s, kf = x.shape
    return x.reshape(n, s * k, kf // k)


def load_frames(n_speakers: int, seed: int = 0, features: FeatureConfig = FeatureConfig(), stack: int = 1
                ) -> FrameData:
    """The corpus's normalised log-mel frames, split by speaker, ``stack`` frames per step (N, T // stack, stack·F).

    Built once, then read from the cache.
    """
    if stack < 1:
        raise ValueError(f"stack must be >= 1, got {stack}")
    key = (n_speakers, seed, features, stack)
    if key not in _DATA:
        source = digest_text("frames-v1", _recipe(n_speakers, seed, features), speech.engine_id())
        payload = cached_file(f"spoken_words_logmel_{n_speakers}spk.npz", source,
                              lambda: _build(n_speakers, seed, features))
        with np.load(io.BytesIO(payload), allow_pickle=False) as z:
            x = torch.from_numpy(z["features"].astype(np.float32))          # (N, T, F)
            y, spk, split = (torch.from_numpy(z[k].astype(np.int64)) for k in ("labels", "speakers", "split"))
        parts = {name: torch.nonzero(split == i).flatten() for i, name in enumerate(speech.SPLITS)}
        mean, std = band_statistics(x[parts["train"]])
        x = stack_frames((x - mean) / std, stack)
        _DATA[key] = FrameData(
            x[parts["train"]], y[parts["train"]], spk[parts["train"]], x[parts["val"]], y[parts["val"]],
            x[parts["test"]], y[parts["test"]], mean, std, parts["train"], parts["test"], speech.KEYWORDS)
    return _DATA[key]


def clip_speaker(n_speakers: int, seed: int, index: int) -> speech.Speaker:
    """The speaker of corpus clip ``index``."""
    return speech.make_speakers(n_speakers, seed)[index // len(speech.KEYWORDS)]


def clip_audio(n_speakers: int, seed: int, index: int) -> np.ndarray:
    """Corpus clip ``index`` rebuilt alone: (L,) float32 at 16 kHz, equal to the clip the features came from."""
    word = index % len(speech.KEYWORDS)
    clip = speech.make_clip(word, clip_speaker(n_speakers, seed, index), np.random.default_rng([seed, index]))
    return np.round(clip * 32767.0).astype(np.int16).astype(np.float32) / 32767.0


def _build_pool(n_speakers: int, per_speaker: int, seed: int, exclude: frozenset, features: FeatureConfig) -> bytes:
    t0 = time.perf_counter()
    pool = spoken_phrases.build_phrase_pool(n_speakers, per_speaker, seed, exclude)
    synth_s = time.perf_counter() - t0
    feats = [log_mel(torch.from_numpy(pool.audio[s:s + 256].astype(np.float32) / 32767.0), features).half()
             for s in range(0, len(pool.audio), 256)]                        # (256, T, F) at a time
    buf = io.BytesIO()
    np.savez(buf, features=torch.cat(feats).numpy(), speakers=pool.speaker, phrases=pool.phrase,
             seconds=np.array([synth_s, time.perf_counter() - t0]))
    return buf.getvalue()


def load_pool_frames(data: FrameData, cfg_data) -> PoolFrames:
    """The unlabelled phrase pool ``cfg_data`` describes, normalised with the labelled training bands of ``data``.

    Its speakers exclude every speaker of the labelled corpus (by tuple); built once, then cached.
    """
    n, per, seed = cfg_data.pool_speakers, cfg_data.pool_clips_per_speaker, cfg_data.pool_seed
    key = ("pool", n, per, seed, cfg_data.n_speakers, cfg_data.corpus_seed, cfg_data.features, cfg_data.stack)
    if key not in _DATA:
        exclude = frozenset(speech.make_speakers(cfg_data.n_speakers, cfg_data.corpus_seed))
        recipe = repr((n, per, seed, sorted(map(repr, exclude)), spoken_phrases.MIN_WORDS, spoken_phrases.MAX_WORDS,
                       dataclasses.astuple(cfg_data.features)))
        source = digest_text("phrase-pool-v1", recipe, PLAYS_SHA256, speech.engine_id())
        name = f"spoken_phrases_logmel_{n}x{per}.npz"
        payload = cached_file(name, source, lambda: _build_pool(n, per, seed, exclude, cfg_data.features))
        with np.load(io.BytesIO(payload), allow_pickle=False) as z:
            x = torch.from_numpy(z["features"].astype(np.float32))          # (P, T, F)
            spk = torch.from_numpy(z["speakers"].astype(np.int64))
            phrase = torch.from_numpy(z["phrases"].astype(np.int64))
            built = z["seconds"].tolist()
        speakers = tuple(spoken_phrases.pool_speakers(n, seed, exclude))
        _DATA[key] = PoolFrames(stack_frames((x - data.mean) / data.std, cfg_data.stack), spk, phrase, speakers,
                                nbytes=len(payload), synth_seconds=built[0], build_seconds=built[1])
    return _DATA[key]


def heldout_pool_frames(data: FrameData, pool: PoolFrames) -> torch.Tensor:
    """The pool's last ``len(data.val_x)`` clips, never pre-trained on: speech of new speakers on which
    reconstruction is measured (the labelled clips are about half noise, which interpolation fills well)."""
    return pool.x[len(pool.x) - len(data.val_x):]


def pretraining_frames(data: FrameData, pool: PoolFrames, multiple: float) -> torch.Tensor:
    """What pre-training reads: the labelled training clips (labels unused) and the first pool clips,
    ``multiple`` times as many clips as the labelled training set in all: (round(multiple·N), S, k·F)."""
    n, usable = len(data.train_x), len(pool.x) - len(data.val_x)         # the held-out clips stay out
    extra = round((multiple - 1.0) * n)
    if multiple < 1.0 or extra > usable:
        raise ValueError(f"pool multiple {multiple} needs {extra} pool clips; the pool has {usable} besides its "
                         f"{len(data.val_x)} held-out clips (data.pool_speakers x data.pool_clips_per_speaker), "
                         f"so use 1 <= multiple <= {1 + usable / n:.2f}")
    return torch.cat([data.train_x, pool.x[:extra]])
