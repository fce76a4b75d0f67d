"""The WordPiece vocabulary is learned deterministically, and a changed vocabulary makes MLM checkpoints stale."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from course_lib.data.text import SPECIAL_TOKENS
from course_lib.data.wordpiece import learn_wordpiece_vocab


def test_merges_by_hand_with_a_tie_broken_by_text():
    counts = {"cd": 2, "ab": 2, "xy": 1}            # (a,##b) and (c,##d) both occur twice; (x,##y) once
    vocab = learn_wordpiece_vocab(counts, vocab_size=20, special_tokens=("[PAD]",))
    assert vocab == ["[PAD]", "a", "c", "x", "##b", "##d", "##y", "ab", "cd"]   # tie: "a" sorts first; no merge < 2
    assert learn_wordpiece_vocab(counts, vocab_size=8, special_tokens=("[PAD]",))[-1] == "ab"
    assert learn_wordpiece_vocab({"abab": 3}, 20) == ["a", "##a", "##b", "##ab", "##bab", "abab"]  # "#" < "a"


def test_same_counts_in_any_order_give_the_same_vocabulary():
    words = "to be or not to be that is the question whether tis nobler in the mind to suffer".split()
    counts = Counter(words * 3 + ["outrageous", "fortune", "slings", "arrows"])
    forward = learn_wordpiece_vocab(dict(counts), 60, SPECIAL_TOKENS)
    backward = learn_wordpiece_vocab(dict(reversed(list(counts.items()))), 60, SPECIAL_TOKENS)
    assert forward == backward and forward[:5] == list(SPECIAL_TOKENS) and len(forward) == 60
    with pytest.raises(ValueError, match="special tokens"):
        learn_wordpiece_vocab(counts, 2, SPECIAL_TOKENS)


BUILD = """
import json, os, sys
os.environ["COURSE_DATA_DIR"] = sys.argv[1]
from course_lib.data import text
tr, _ = text.split_by_play(text.load_plays())
lines = [" ".join(s.lines) for p in tr[:4] for s in p.speeches]
print(json.dumps(text.train_subword_tokenizer(lines, vocab_size=800).get_vocab(), sort_keys=True))
"""


@pytest.mark.slow
def test_tokenizer_builds_are_identical_across_processes(tmp_path):
    """The library's own WordPiece trainer gave a different vocabulary on each build; this one must not."""
    vocabs = []
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        out = subprocess.run([sys.executable, "-c", BUILD, str(tmp_path / run)], capture_output=True, text=True,
                             check=True)
        vocabs.append(json.loads(out.stdout))
    assert vocabs[0] == vocabs[1] and len(vocabs[0]) == 800


def test_checkpoint_of_another_vocabulary_is_refused(tmp_path, one_thread):
    """A rebuilt tokenizer with other ids must not load the encoder 'matching' with misaligned embeddings."""
    from course_lib.chapters import mlm as chapter
    from course_lib.profiles import for_profile
    from course_lib.train import load_finished

    cfg = for_profile(chapter.Config, "smoke", {"model.n_layers": 1, "model.d_model": 64, "data.batch_size": 32,
                                                "data.eval_sequences": 64, "train.steps": 3})
    chapter.pretrain(cfg, "cpu", folder=tmp_path, progress=False)
    s = chapter.build(cfg)
    assert load_finished(s.model, s.task, s.train, tmp_path)[1].kind == "finished"
    seqs = s.task.train_seqs.clone()
    swap = (seqs == 7) | (seqs == 8)                                  # two tokens trade ids: another vocabulary
    seqs[swap] = 15 - seqs[swap]
    other = chapter.MLMTask(seqs, s.task.val_seqs, cfg)
    result, status = load_finished(s.model, other, s.train, tmp_path)
    assert result is None and status.kind == "stale" and "other settings" in status.reason
