"""The spoken-keyword corpus (course_lib.data.speech): eSpeak NG synthesis, clips, splits, cache, determinism."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from course_lib.data import speech
from course_lib.data.speech import (
    ACCENTS, KEYWORDS, SAMPLE_RATE, VARIANTS, Speaker, build_spoken_words, corpus_nbytes, load_spoken_words,
    make_clip, make_speakers, synthesize,
)

REPO = Path(__file__).resolve().parents[1]
FEMALE = Speaker("en-us", "f3", 175, 50, 50)    # f3 breathes: libc rand() noise, so it tests the seeding too


def corpus_digest(sw) -> str:
    h = hashlib.sha256()
    for a in (sw.audio, sw.labels, sw.speakers, sw.split):
        h.update(a.tobytes())
    h.update(repr((sw.speaker_list, sw.words)).encode())
    return h.hexdigest()


def test_keywords_are_speech_commands_words():
    assert len(KEYWORDS) == 20 and len(set(KEYWORDS)) == 20
    assert KEYWORDS[:10] == ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    assert set(KEYWORDS[10:]) == {"yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"}
    assert SAMPLE_RATE == 16_000


def test_every_chosen_accent_and_variant_speaks():
    for variant in VARIANTS:
        x = synthesize("go", Speaker("en-us", variant, 175, 50, 50))
        assert x.dtype == np.float32 and x.ndim == 1
        assert np.abs(x).max() > 0.05 and np.sqrt(np.mean(x ** 2)) > 0.01, variant
    for accent in ACCENTS:
        x = synthesize("go", Speaker(accent, "m1", 175, 50, 50))
        assert np.abs(x).max() > 0.05, accent


@pytest.mark.parametrize("speaker", [FEMALE, *make_speakers(2, seed=0)], ids=lambda s: s.voice)
def test_every_keyword_is_audible_with_plausible_length(speaker):
    for word in KEYWORDS:
        x = synthesize(word, speaker)
        assert 0.2 <= len(x) / SAMPLE_RATE <= 1.2, (word, len(x) / SAMPLE_RATE)
        assert np.abs(x).max() <= 1.0 and np.abs(x).max() > 0.1, word
        assert np.sqrt(np.mean(x ** 2)) > 0.02, word
        floor = 10 ** (-40 / 20) * np.abs(x).max()                  # eSpeak leads with ~12 ms of silence
        assert np.abs(x[:32]).max() >= floor and np.abs(x[-32:]).max() >= floor, f"{word!r}: silence not trimmed"


@pytest.mark.parametrize("variant", ["f3", "caleb", "m1"])
def test_synthesis_is_a_pure_function_of_word_and_speaker(variant):
    # f3 breathes with eSpeak's own generator, caleb (Klatt) with libc rand(), m1 has flutter and roughness state
    speaker = Speaker("en-us", variant, 175, 50, 50)
    first = synthesize("seven", speaker)
    for other in ("stop", "nine"):                 # eSpeak's state would carry over from these
        synthesize(other, Speaker("en", variant, 140, 30, 60))
    assert np.array_equal(first, synthesize("seven", speaker))


def test_different_speakers_give_different_audio():
    a, b, c = make_speakers(3, seed=5)
    clips = [synthesize("yes", s) for s in (a, b, c, FEMALE)]
    for i in range(len(clips)):
        for j in range(i + 1, len(clips)):
            assert clips[i].shape != clips[j].shape or not np.allclose(clips[i], clips[j], atol=1e-3)
    # only the rate differs: the word gets longer when spoken slower
    slow, fast = (synthesize("seven", Speaker("en-us", "m3", r, 50, 50)) for r in (120, 220))
    assert len(slow) > 1.3 * len(fast)


def test_make_speakers_is_deterministic_distinct_and_in_range():
    s = make_speakers(40, seed=7)
    assert s == make_speakers(40, seed=7) and s != make_speakers(40, seed=8)
    assert make_speakers(10, seed=7) == s[:10]
    assert len(set(s)) == 40
    assert len({x.accent for x in s}) >= 5 and len({x.variant for x in s}) >= 20
    for x in s:
        assert x.accent in ACCENTS and x.variant in VARIANTS
        assert 120 <= x.rate <= 220 and 20 <= x.pitch <= 80 and 20 <= x.pitch_range <= 90
        assert x.voice == f"{x.accent}+{x.variant}"


def measured_snr_db(clip: np.ndarray, word: np.ndarray) -> tuple[float, int]:
    """SNR of ``clip`` over the samples of ``word``, found in it by correlation; returns (dB, offset)."""
    from scipy.signal import correlate
    word = word[(len(word) - len(clip)) // 2:][:len(clip)] if len(word) > len(clip) else word
    offset = int(np.argmax(correlate(clip.astype(np.float64), word.astype(np.float64), mode="valid")))
    placed = np.zeros(len(clip))
    placed[offset:offset + len(word)] = word
    scale = float(clip @ placed) / float(placed @ placed)         # least squares: clip = scale * word + noise
    noise = clip - scale * placed
    signal_power = np.mean((scale * word.astype(np.float64)) ** 2)
    return 10 * np.log10(signal_power / np.mean(noise ** 2)), offset


def test_make_clip_snr_is_as_requested():
    speaker = make_speakers(1, seed=3)[0]
    for target in (8.0, 20.0):
        clip = make_clip(KEYWORDS.index("seven"), speaker, np.random.default_rng(11), snr_db=(target, target))
        snr, _ = measured_snr_db(clip, synthesize("seven", speaker))
        assert abs(snr - target) < 0.3, (snr, target)
    word = synthesize("left", FEMALE)
    offsets = set()
    for seed in range(6):
        clip = make_clip(KEYWORDS.index("left"), FEMALE, np.random.default_rng(seed))
        assert clip.shape == (SAMPLE_RATE,) and clip.dtype == np.float32
        assert 10 ** (-12 / 20) - 1e-6 <= np.abs(clip).max() <= 1.0       # gain: peak from -12 dB to full scale
        snr, offset = measured_snr_db(clip, word)
        assert 5.0 - 0.3 <= snr <= 30.0 + 0.3, snr
        offsets.add(offset)
        assert np.array_equal(clip, make_clip(KEYWORDS.index("left"), FEMALE, np.random.default_rng(seed)))
    assert len(offsets) == 6, "the word should move around the clip"


def test_make_clip_centre_crops_a_long_word():
    word = synthesize("seven", FEMALE)
    clip = make_clip(KEYWORDS.index("seven"), FEMALE, np.random.default_rng(0), seconds=0.25, snr_db=(30, 30))
    assert clip.shape == (4000,) and len(word) > 4000
    middle = word[(len(word) - 4000) // 2:][:4000].astype(np.float64)
    assert np.corrcoef(clip, middle)[0, 1] > 0.99


def test_corpus_is_split_by_speaker_and_clips_rebuild_alone():
    words = ("yes", "no", "go")
    sw = build_spoken_words(7, seed=3, seconds=0.5, words=words)
    assert sw.audio.shape == (21, 8000) and sw.audio.dtype == np.int16
    assert sw.labels.dtype == np.int64 and sw.speakers.dtype == np.int64 and sw.split.dtype == np.uint8
    assert sw.n_speakers == 7 and sw.words == words
    assert set(np.unique(sw.split)) == {0, 1, 2}
    for s in range(7):
        rows = sw.speakers == s
        assert len(np.unique(sw.split[rows])) == 1, "a speaker's clips must all be in one split"
        assert sorted(sw.labels[rows]) == [0, 1, 2]
    train, val, test = (set(sw.speakers[sw.indices(name)]) for name in ("train", "val", "test"))
    assert not (train & val or train & test or val & test) and train and val and test
    x = sw.to_float(np.arange(3))
    assert x.dtype == np.float32 and x.shape == (3, 8000) and np.abs(x).max() <= 1.0
    k = 10                                   # speaker 3, word 1: rebuilt from its own rng alone
    clip = make_clip(1, sw.speaker_list[3], np.random.default_rng([3, k]), 0.5, words=words)
    assert sw.speakers[k] == 3 and sw.labels[k] == 1
    assert np.array_equal(sw.audio[k], np.round(clip * 32767).astype(np.int16))
    assert sum(a.nbytes for a in (sw.audio, sw.labels, sw.speakers, sw.split)) == corpus_nbytes(7, 0.5, words)
    assert corpus_nbytes(60, 1.0) == 1200 * (2 * 16_000 + 17)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="n_speakers must be an integer >= 3"):
        build_spoken_words(2)
    with pytest.raises(ValueError, match="n_speakers must be an integer >= 3"):
        load_spoken_words(2)
    with pytest.raises(ValueError, match="leave no training speaker"):
        build_spoken_words(4, val_fraction=0.5, test_fraction=0.4)
    with pytest.raises(ValueError, match="non-empty string"):
        synthesize("", FEMALE)
    with pytest.raises(ValueError, match="non-empty string"):
        synthesize("   ", FEMALE)
    with pytest.raises(ValueError, match="non-empty string"):
        synthesize(7, FEMALE)
    with pytest.raises(ValueError, match=r"'xx-nosuch\+m1'"):
        synthesize("yes", Speaker("xx-nosuch", "m1", 175, 50, 50))
    with pytest.raises(ValueError, match="variant 'F3'"):       # eSpeak itself would silently use the default
        synthesize("yes", Speaker("en-us", "F3", 175, 50, 50))
    with pytest.raises(ValueError, match="rate"):
        Speaker("en-us", "f3", 30, 50, 50)
    with pytest.raises(ValueError, match="snr_db"):
        make_clip(0, FEMALE, np.random.default_rng(0), snr_db=(30, 5))
    with pytest.raises(ValueError, match="word_index"):
        make_clip(20, FEMALE, np.random.default_rng(0))
    with pytest.raises(ValueError, match="not one string"):
        build_spoken_words(3, words="yes")
    with pytest.raises(ValueError, match="seconds"):
        build_spoken_words(3, seconds=0)


def test_missing_espeakng_loader_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)      # makes `import espeakng_loader` fail
    monkeypatch.setattr(speech, "_ENGINE", None)
    with pytest.raises(ImportError, match="pip install espeakng-loader"):
        synthesize("yes", FEMALE)
    with pytest.raises(ImportError, match="espeakng-loader"):
        load_spoken_words(3, words=("yes",))


def test_cache_survives_corruption_with_identical_arrays(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    recipe = dict(n_speakers=3, seed=2, seconds=0.5, words=("up", "down"))
    first = load_spoken_words(**recipe)
    [entry] = [p for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".sha256")]
    with np.load(entry, allow_pickle=False) as z:                   # plain arrays, no pickles
        assert {"audio", "labels", "speakers", "split", "accent", "variant", "rate"} <= set(z.files)
    assert corpus_digest(first) == corpus_digest(build_spoken_words(**recipe))
    assert first.speaker_list == tuple(make_speakers(3, seed=2))
    payload = bytearray(entry.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    entry.write_bytes(bytes(payload))
    again = load_spoken_words(**recipe)
    assert corpus_digest(again) == corpus_digest(first)
    assert hashlib.sha256(entry.read_bytes()).hexdigest() == entry.with_name(entry.name + ".sha256").read_text()
    assert corpus_digest(load_spoken_words(**{**recipe, "seed": 3})) != corpus_digest(first)


BUILD_AND_DIGEST = """
import hashlib, sys
from course_lib.data.speech import build_spoken_words
sw = build_spoken_words(6, seed=1)
h = hashlib.sha256()
for a in (sw.audio, sw.labels, sw.speakers, sw.split):
    h.update(a.tobytes())
h.update(repr((sw.speaker_list, sw.words)).encode())
print(h.hexdigest())
"""


@pytest.mark.slow
def test_corpus_is_identical_across_fresh_processes():
    digests = [subprocess.run([sys.executable, "-c", BUILD_AND_DIGEST], cwd=REPO, capture_output=True, text=True,
                              check=True, timeout=300).stdout.strip() for _ in range(2)]
    assert len(digests[0]) == 64 and digests[0] == digests[1]
    synthesize("nine", Speaker("en-gb-scotland", "whisper", 200, 70, 30))   # this process has spoken before
    assert corpus_digest(build_spoken_words(6, seed=1)) == digests[0]
