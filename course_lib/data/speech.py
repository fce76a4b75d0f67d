"""Spoken keywords, offline: twenty Speech-Commands words synthesised by eSpeak NG through ``ctypes``.

Every speaker (an English accent, a voice variant, a rate and a pitch) says every
word once; each 1-second clip holds the word at a random offset in white noise at
a random SNR and level. Splits are by speaker, so no voice of the test set is
heard in training. Nothing is downloaded: the eSpeak NG library and its data come
with the ``espeakng-loader`` wheel (eSpeak NG is GPL-3.0; it runs as a separate
library and only its audio is kept).

Determinism: eSpeak keeps state between utterances inside the library (the pitch
flutter phase, the roughness cycle count, the gain control), seeds its noise
generator from the clock, and its Klatt voices draw noise from libc's ``rand()``.
So every utterance runs in a freshly loaded library instance with both random
generators seeded (``srand`` reseeds libc's generator for the whole process),
which makes :func:`synthesize` a pure function of (word, speaker): any clip can
be rebuilt alone, in any process.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import io
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .cache import cached_file, digest_text

__all__ = [
    "KEYWORDS", "SAMPLE_RATE", "ESPEAK_RATE", "ACCENTS", "VARIANTS", "SPLITS", "Speaker", "SpokenWords",
    "synthesize", "make_speakers", "make_clip", "build_spoken_words", "load_spoken_words", "corpus_nbytes",
    "engine_id",
]

KEYWORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
            "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SAMPLE_RATE = 16_000          # the corpus's rate (Hz), as in Speech Commands
ESPEAK_RATE = 22_050          # eSpeak NG's native rate; resampled by 320/441
SPLITS = ("train", "val", "test")   # values 0, 1, 2 of SpokenWords.split

# English accents of eSpeak NG (lang/gmw/*; "en" is British English). en-shaw is left out: it reads Shavian script.
ACCENTS = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
# Voice variants (voices/!v): all 104 synthesise, these 92 sound like a person. Left out: the robot and effect voices
# (robosoft..robosoft8, UniRobot, anikaRobot, Demonic: heavy comb-filter echo, monotone) and "Mr serious"
# (a space in its name; the same settings as Tweaky).
VARIANTS = (
    "Alex", "Alicia", "Andrea", "Andy", "Annie", "AnxiousAndy", "Denis", "Diogo", "Gene", "Gene2", "Henrique",
    "Hugo", "Jacky", "Lee", "Marco", "Mario", "Michael", "Mike", "Nguyen", "Reed", "RicishayMax", "RicishayMax2",
    "RicishayMax3", "Storm", "Tweaky", "adam", "anika", "announcer", "antonio", "aunty", "belinda", "benjamin",
    "boris", "caleb", "croak", "david", "ed", "edward", "edward2", "f1", "f2", "f3", "f4", "f5", "fast", "grandma",
    "grandpa", "gustave", "ian", "iven", "iven2", "iven3", "iven4", "john", "kaukovalta", "klatt", "klatt2",
    "klatt3", "klatt4", "klatt5", "klatt6", "linda", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "marcelo",
    "max", "michel", "miguel", "mike2", "norbert", "pablo", "paul", "pedro", "quincy", "rob", "robert", "sandro",
    "shelby", "steph", "steph2", "steph3", "travis", "victor", "whisper", "whisperf", "zac",
)
RATES = (120, 220)            # words per minute, both ends included
PITCHES = (20, 80)            # eSpeak pitch 0-100
PITCH_RANGES = (20, 90)       # eSpeak pitch range 0-100
TRIM_DB = -40.0               # silence is anything this far below the word's peak

_LOADER_HINT = "the speech corpus needs the 'espeakng-loader' package (eSpeak NG, GPL-3.0): pip install espeakng-loader"


# --- eSpeak NG through ctypes -------------------------------------------------------------------------------------

_AUDIO_OUTPUT_SYNCHRONOUS = 2       # speak_lib.h: espeak_AUDIO_OUTPUT
_POS_CHARACTER = 1                  # espeak_POSITION_TYPE
_CHARS_AUTO = 0                     # espeakCHARS_AUTO: UTF-8 or 8-bit
_INITIALIZE_DONT_EXIT = 0x8000      # without it, missing data makes eSpeak call exit() and end Python
_RATE, _PITCH, _RANGE = 1, 3, 4     # espeak_PARAMETER: espeakRATE, espeakPITCH, espeakRANGE
_EE_OK = 0
# A whole utterance must arrive in one callback: in synchronous mode eSpeak NG 1.52 can drop everything after a
# buffer that ends exactly full (with 500 ms, "seven" in en-us+f3 stops at 0.50 s of 0.57 s). 10 s fits any word.
_BUFFER_MS = 10_000
_SEED = 1                           # both random generators are reset to this before every utterance

_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


def _unload(handle: int) -> None:
    """Close a shared library so that the next load starts from fresh static state."""
    import _ctypes
    (getattr(_ctypes, "dlclose", None) or _ctypes.FreeLibrary)(handle)


class _Espeak:
    """The eSpeak NG library of ``espeakng-loader``: paths, the audio callback, one fresh instance per utterance."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as err:
            raise ImportError(_LOADER_HINT) from err
        self.lib_path = Path(espeakng_loader.get_library_path()).resolve()
        data = Path(espeakng_loader.get_data_path()).resolve()
        if not self.lib_path.is_file():
            raise FileNotFoundError(f"eSpeak NG library missing at {self.lib_path}; "
                                    f"reinstall with: pip install --force-reinstall espeakng-loader")
        # espeak_Initialize's path is the folder that *contains* espeak-ng-data, not the data folder itself
        if data.name != "espeak-ng-data" or not (data / "phontab").is_file():
            raise FileNotFoundError(f"expected eSpeak NG data (espeak-ng-data/phontab) at {data}; "
                                    f"reinstall with: pip install --force-reinstall espeakng-loader")
        self.data_path = data
        self.variants = frozenset(p.name for p in (data / "voices" / "!v").iterdir())
        self.libc = ctypes.CDLL(None) if os.name == "posix" else None   # Klatt voices' noise calls libc rand()
        self._chunks: list[np.ndarray] = []
        self._callback = _Callback(self._collect)           # kept referenced as long as the engine lives
        probe = [self.pcm("go", "en+m1", 175, 50, 50) for _ in range(2)]
        if not np.array_equal(*probe):
            warnings.warn("eSpeak NG kept its state between two loads (is libespeak-ng also loaded by another "
                          "module in this process?): the spoken-word corpus will not be reproducible",
                          RuntimeWarning, stacklevel=3)

    def _collect(self, wav, n: int, events) -> int:
        if wav and n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())   # (n,) int16
        return 0                                                                    # 0: continue

    def _open(self) -> ctypes.CDLL:
        lib = ctypes.CDLL(str(self.lib_path))
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_Callback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, str(self.data_path.parent).encode(),
                                     _INITIALIZE_DONT_EXIT)
        if rate != ESPEAK_RATE:
            self._close(lib)
            raise RuntimeError(f"espeak_Initialize returned {rate}, expected the sample rate {ESPEAK_RATE} "
                               f"(data folder {self.data_path})")
        lib.espeak_SetSynthCallback(self._callback)
        if hasattr(lib, "espeak_ng_SetRandSeed"):
            lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
            lib.espeak_ng_SetRandSeed(_SEED)
        if self.libc is not None:
            self.libc.srand(_SEED)
        return lib

    @staticmethod
    def _close(lib: ctypes.CDLL) -> int:
        err = lib.espeak_Terminate()
        _unload(lib._handle)
        return err

    def pcm(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int) -> np.ndarray:
        """``text`` spoken by ``voice``: (M,) int16 at 22,050 Hz, exactly as eSpeak returns it."""
        self._chunks = []
        lib = self._open()
        try:
            if lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
                raise ValueError(f"eSpeak NG has no voice {voice!r}; accents to try: {', '.join(ACCENTS)}")
            for param, value in ((_RATE, rate), (_PITCH, pitch), (_RANGE, pitch_range)):
                if (err := lib.espeak_SetParameter(param, value, 0)) != _EE_OK:
                    raise RuntimeError(f"espeak_SetParameter({param}, {value}) failed with error {err}")
            buf = text.encode("utf-8") + b"\0"
            if (err := lib.espeak_Synth(buf, len(buf), 0, _POS_CHARACTER, 0, _CHARS_AUTO, None, None)) != _EE_OK:
                raise RuntimeError(f"espeak_Synth failed with error {err} for {text!r} in voice {voice!r}")
            if (err := lib.espeak_Synchronize()) != _EE_OK:
                raise RuntimeError(f"espeak_Synchronize failed with error {err}")
        finally:
            closed = self._close(lib)
        if closed != _EE_OK:
            raise RuntimeError(f"espeak_Terminate failed with error {closed}")
        chunks, self._chunks = self._chunks, []
        if len(chunks) > 1:
            raise ValueError(f"{text!r} is too long: one utterance must fit in eSpeak's {_BUFFER_MS} ms buffer")
        return chunks[0] if chunks else np.zeros(0, np.int16)


_ENGINE: _Espeak | None = None


def _engine() -> _Espeak:
    """The process's eSpeak NG wrapper, made on first use."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _Espeak()
    return _ENGINE


# --- speakers and words -------------------------------------------------------------------------------------------

def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: an eSpeak accent and voice variant, a rate and a pitch."""

    accent: str        # eSpeak language name, e.g. "en-us"
    variant: str       # file under voices/!v, e.g. "f3"
    rate: int          # words per minute (eSpeak accepts 80-450)
    pitch: int         # 0-100
    pitch_range: int   # 0-100

    def __post_init__(self) -> None:
        for name in ("accent", "variant"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip() or "+" in value:
                raise ValueError(f"Speaker.{name} must be a non-empty name without '+', got {value!r}")
        for name, lo, hi in (("rate", 80, 450), ("pitch", 0, 100), ("pitch_range", 0, 100)):
            value = getattr(self, name)
            if not _is_int(value) or not lo <= value <= hi:
                raise ValueError(f"Speaker.{name} must be an integer in [{lo}, {hi}], got {value!r}")
            object.__setattr__(self, name, int(value))

    @property
    def voice(self) -> str:
        """The eSpeak voice name, e.g. ``"en-us+f3"``."""
        return f"{self.accent}+{self.variant}"


def synthesize(word: str, speaker: Speaker) -> np.ndarray:
    """``word`` said by ``speaker``: (L,) float32 at SAMPLE_RATE in [-1, 1], leading/trailing silence trimmed."""
    if not isinstance(word, str) or not word.strip():
        raise ValueError(f"word must be a non-empty string, got {word!r}")
    if not isinstance(speaker, Speaker):
        raise TypeError(f"speaker must be a Speaker, got {type(speaker).__name__}")
    engine = _engine()
    if speaker.variant not in engine.variants:
        raise ValueError(f"eSpeak NG has no voice variant {speaker.variant!r} (voice {speaker.voice!r}); "
                         f"variants are the files of {engine.data_path / 'voices' / '!v'}")
    pcm = engine.pcm(word.strip(), speaker.voice, speaker.rate, speaker.pitch, speaker.pitch_range)  # (M,) int16
    from scipy.signal import resample_poly
    x = resample_poly(pcm.astype(np.float64) / 32768.0, 320, 441)   # (L,) at 16 kHz
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak == 0.0:
        raise RuntimeError(f"eSpeak NG produced silence for {word!r} in voice {speaker.voice!r}")
    loud = np.flatnonzero(np.abs(x) >= peak * 10 ** (TRIM_DB / 20))
    return np.clip(x[loud[0]:loud[-1] + 1], -1.0, 1.0).astype(np.float32)


def make_speakers(n: int, seed: int) -> list[Speaker]:
    """``n`` distinct speakers drawn with ``default_rng(seed)``; the first k of n are those of ``make_speakers(k)``."""
    if not _is_int(n) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    _check_seed(seed)
    rng = np.random.default_rng(seed)
    speakers: list[Speaker] = []
    seen: set[Speaker] = set()
    while len(speakers) < n:
        s = Speaker(accent=ACCENTS[rng.integers(len(ACCENTS))], variant=VARIANTS[rng.integers(len(VARIANTS))],
                    rate=int(rng.integers(RATES[0], RATES[1] + 1)), pitch=int(rng.integers(PITCHES[0], PITCHES[1] + 1)),
                    pitch_range=int(rng.integers(PITCH_RANGES[0], PITCH_RANGES[1] + 1)))
        if s not in seen:
            seen.add(s)
            speakers.append(s)
    return speakers


def _check_seed(seed) -> None:
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def _check_range(name: str, bounds) -> tuple[float, float]:
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high) of numbers, got {bounds!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise ValueError(f"{name} must be finite with low <= high, got {bounds!r}")
    return lo, hi


def _n_samples(seconds) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float, np.integer, np.floating)) \
            or not math.isfinite(seconds) or round(seconds * SAMPLE_RATE) < 1:
        raise ValueError(f"seconds must be a positive number (at least one sample), got {seconds!r}")
    return round(seconds * SAMPLE_RATE)


def _check_words(words) -> tuple[str, ...]:
    if isinstance(words, str) or not isinstance(words, Sequence) or len(words) == 0:
        raise ValueError(f"words must be a non-empty sequence of strings (not one string), got {words!r}")
    words = tuple(words)
    if any(not isinstance(w, str) or not w.strip() for w in words):
        raise ValueError(f"every word must be a non-empty string, got {words!r}")
    if len(set(words)) != len(words):
        raise ValueError(f"words must be distinct, got {words!r}")
    return words


def make_clip(word_index: int, speaker: Speaker, rng: np.random.Generator, seconds: float = 1.0,
              snr_db: tuple[float, float] = (5.0, 30.0), gain_db: tuple[float, float] = (-12.0, 0.0),
              words: Sequence[str] = KEYWORDS) -> np.ndarray:
    """One noisy clip of ``words[word_index]``: (round(seconds * SAMPLE_RATE),) float32 in [-1, 1].

    The word (centre-cropped if longer than the clip) goes at a uniform random offset; white Gaussian noise is added
    at an SNR drawn uniformly from ``snr_db`` (word power over the word's samples / noise power); the mix is scaled
    so its peak sits ``gain`` dB from full scale, gain uniform in ``gain_db``. Draws from ``rng``, in this order:
    offset, SNR, gain, noise.
    """
    words = _check_words(words)
    if not _is_int(word_index) or not 0 <= word_index < len(words):
        raise ValueError(f"word_index must be an integer in [0, {len(words)}), got {word_index!r}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    n = _n_samples(seconds)
    snr_lo, snr_hi = _check_range("snr_db", snr_db)
    gain_lo, gain_hi = _check_range("gain_db", gain_db)
    word = synthesize(words[word_index], speaker).astype(np.float64)   # (W,)
    if len(word) > n:
        start = (len(word) - n) // 2
        word = word[start:start + n]
    word /= np.abs(word).max()
    offset = int(rng.integers(0, n - len(word) + 1))
    snr = rng.uniform(snr_lo, snr_hi)
    gain = rng.uniform(gain_lo, gain_hi)
    noise_std = math.sqrt(float(np.mean(word ** 2)) / 10 ** (snr / 10))
    clip = rng.normal(0.0, noise_std, n)                                   # (n,)
    clip[offset:offset + len(word)] += word
    clip *= 10 ** (gain / 20) / np.abs(clip).max()
    return np.clip(clip, -1.0, 1.0).astype(np.float32)


# --- the corpus ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class SpokenWords:
    """A spoken-keyword corpus: one clip per (speaker, word), split by speaker."""

    audio: np.ndarray       # (N, L) int16, scale 32767
    labels: np.ndarray      # (N,) int64 index into words
    speakers: np.ndarray    # (N,) int64 speaker id, index into speaker_list
    split: np.ndarray       # (N,) uint8: 0 train, 1 val, 2 test
    speaker_list: tuple[Speaker, ...]
    words: tuple[str, ...] = KEYWORDS

    def __post_init__(self) -> None:
        n = len(self.labels)
        for name, dtype, ndim in (("audio", np.int16, 2), ("labels", np.int64, 1), ("speakers", np.int64, 1),
                                  ("split", np.uint8, 1)):
            a = getattr(self, name)
            if not isinstance(a, np.ndarray) or a.dtype != dtype or a.ndim != ndim or len(a) != n:
                raise ValueError(f"SpokenWords.{name} must be a {ndim}-D {np.dtype(dtype)} array of length {n}, "
                                 f"got {getattr(a, 'dtype', type(a))} {getattr(a, 'shape', '')}")
            a.setflags(write=False)

    def to_float(self, idx) -> np.ndarray:
        """Clips ``audio[idx]`` as float32 in [-1, 1]: (L,) for one index, (K, L) for several."""
        return self.audio[idx].astype(np.float32) / 32767.0

    def indices(self, split: str) -> np.ndarray:
        """Row indices of one split: "train", "val" or "test"."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return np.flatnonzero(self.split == SPLITS.index(split))

    @property
    def n_speakers(self) -> int:
        return len(self.speaker_list)


def _check_recipe(n_speakers, seed, seconds, val_fraction, test_fraction, words, snr_db, gain_db):
    if not _is_int(n_speakers) or n_speakers < 3:
        raise ValueError(f"n_speakers must be an integer >= 3 (train, val and test each need a speaker), "
                         f"got {n_speakers!r}")
    _check_seed(seed)
    n_samples = _n_samples(seconds)
    for name, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not isinstance(f, (int, float)) or not 0.0 < f < 1.0:
            raise ValueError(f"{name} must be in (0, 1), got {f!r}")
    n_val, n_test = max(1, round(val_fraction * n_speakers)), max(1, round(test_fraction * n_speakers))
    if n_speakers - n_val - n_test < 1:
        raise ValueError(f"val_fraction={val_fraction} and test_fraction={test_fraction} leave no training speaker "
                         f"out of {n_speakers} ({n_val} val, {n_test} test)")
    return (n_samples, n_val, n_test, _check_words(words), _check_range("snr_db", snr_db),
            _check_range("gain_db", gain_db))


def build_spoken_words(n_speakers: int, seed: int = 0, seconds: float = 1.0, val_fraction: float = 0.15,
                       test_fraction: float = 0.15, words: Sequence[str] = KEYWORDS,
                       snr_db: tuple[float, float] = (5.0, 30.0), gain_db: tuple[float, float] = (-12.0, 0.0),
                       ) -> SpokenWords:
    """Synthesise the corpus: clip k = s * len(words) + w is speaker s saying word w, drawn with
    ``default_rng([seed, k])`` (so it can be rebuilt alone); speakers go to train/val/test as whole speakers."""
    n_samples, n_val, n_test, words, snr_db, gain_db = _check_recipe(
        n_speakers, seed, seconds, val_fraction, test_fraction, words, snr_db, gain_db)
    speaker_list = make_speakers(n_speakers, seed)
    n = n_speakers * len(words)
    audio = np.empty((n, n_samples), np.int16)                            # (N, L)
    labels = np.tile(np.arange(len(words), dtype=np.int64), n_speakers)    # (N,)
    speakers = np.repeat(np.arange(n_speakers, dtype=np.int64), len(words))
    for k in range(n):
        clip = make_clip(int(labels[k]), speaker_list[speakers[k]], np.random.default_rng([seed, k]), seconds,
                         snr_db, gain_db, words)
        audio[k] = np.round(clip * 32767.0).astype(np.int16)
    order = np.random.default_rng([seed, 0x5EED, n_speakers]).permutation(n_speakers)
    speaker_split = np.zeros(n_speakers, np.uint8)                         # (S,)
    speaker_split[order[:n_test]] = 2
    speaker_split[order[n_test:n_test + n_val]] = 1
    return SpokenWords(audio, labels, speakers, speaker_split[speakers], tuple(speaker_list), words)


def load_spoken_words(n_speakers: int, seed: int = 0, seconds: float = 1.0, val_fraction: float = 0.15,
                      test_fraction: float = 0.15, words: Sequence[str] = KEYWORDS,
                      snr_db: tuple[float, float] = (5.0, 30.0), gain_db: tuple[float, float] = (-12.0, 0.0),
                      ) -> SpokenWords:
    """:func:`build_spoken_words`, cached under ``data/cache`` (keyed by the recipe and the eSpeak NG build)."""
    _, _, _, words, snr_db, gain_db = _check_recipe(
        n_speakers, seed, seconds, val_fraction, test_fraction, words, snr_db, gain_db)
    engine = _engine()
    recipe = repr((int(n_speakers), int(seed), float(seconds), float(val_fraction), float(test_fraction), words,
                   snr_db, gain_db, ACCENTS, VARIANTS, RATES, PITCHES, PITCH_RANGES, TRIM_DB))
    source = digest_text("v1", recipe, importlib.metadata.version("espeakng-loader"),
                         f"{engine.lib_path.name}:{engine.lib_path.stat().st_size}")

    def build() -> bytes:
        sw = build_spoken_words(n_speakers, seed, seconds, val_fraction, test_fraction, words, snr_db, gain_db)
        table = sw.speaker_list
        buf = io.BytesIO()
        np.savez(buf, audio=sw.audio, labels=sw.labels, speakers=sw.speakers, split=sw.split, words=np.array(words),
                 accent=np.array([s.accent for s in table]), variant=np.array([s.variant for s in table]),
                 rate=np.array([s.rate for s in table], np.int64), pitch=np.array([s.pitch for s in table], np.int64),
                 pitch_range=np.array([s.pitch_range for s in table], np.int64))
        return buf.getvalue()

    payload = cached_file(f"spoken_words_{int(n_speakers)}spk.npz", source, build)
    with np.load(io.BytesIO(payload), allow_pickle=False) as z:
        table = tuple(Speaker(str(a), str(v), int(r), int(p), int(pr))
                      for a, v, r, p, pr in zip(z["accent"], z["variant"], z["rate"], z["pitch"], z["pitch_range"]))
        return SpokenWords(z["audio"], z["labels"], z["speakers"], z["split"], table,
                           tuple(str(w) for w in z["words"]))


def engine_id() -> str:
    """Which eSpeak NG build makes the audio: the wheel's version, the library's name and size (for cache keys)."""
    lib = _engine().lib_path
    return f"{importlib.metadata.version('espeakng-loader')}:{lib.name}:{lib.stat().st_size}"


def corpus_nbytes(n_speakers: int, seconds: float, words: Sequence[str] = KEYWORDS) -> int:
    """Bytes of a corpus's arrays: int16 audio plus int64 labels and speaker ids and uint8 splits."""
    if not _is_int(n_speakers) or n_speakers < 1:
        raise ValueError(f"n_speakers must be a positive integer, got {n_speakers!r}")
    n = n_speakers * len(_check_words(words))
    return n * (2 * _n_samples(seconds) + 8 + 8 + 1)
