"""Song-dynasty ci poems (宋词): a Chinese text for the character language models.

``songci.json.xz`` next to this module holds 3,629 ci (about 330,000 characters, 4,337 distinct) from
the ``chinese-poetry`` 2.0.1 npm package (``dist/songci/ci.song.*.json``; the poems are in the public
domain, the collection is MIT-licensed): every third ci of the collection, in its order, until the text
reaches 330,000 characters. Each entry keeps the tune name (``rhythmic``), the poet and the lines.

``python -m course_lib train rnn_lm --text songci`` trains on it (the name stands for this text, see
``course_lib.chapters.char_lm.load_corpus``); the last tenth validates, as for any ``--text`` file.
"""

from __future__ import annotations

import json
import lzma
from pathlib import Path

from .cache import read_shipped

__all__ = ["SONGCI_FILE", "SONGCI_SHA256", "load_songci", "songci_text"]

SONGCI_FILE = Path(__file__).with_name("songci.json.xz")
SONGCI_SHA256 = "e7b01adfd8ced5c233d23255a354d8e6c829988aacd09a9b2364185b3258c5ab"


def load_songci() -> list[dict]:
    """The ci as ``[{"rhythmic": tune, "author": poet, "paragraphs": [line, ...]}, ...]``, checked by SHA-256."""
    return json.loads(lzma.decompress(read_shipped(SONGCI_FILE, SONGCI_SHA256, "the Song ci file")).decode("utf-8"))


def songci_text() -> str:
    """The ci as one text: a heading line (tune and poet), the lines, a blank line between poems."""
    return "\n\n".join(f"{p['rhythmic']}\u3000{p['author']}\n" + "\n".join(p["paragraphs"]) for p in load_songci())
