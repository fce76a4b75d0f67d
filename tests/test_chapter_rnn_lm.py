"""Chapter 05, character RNN LM: stream layout, n-gram baselines, learning, the CLI, train-or-load."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from course_lib.__main__ import main
from course_lib.data.text import CharVocab
from course_lib.models.ngram import KneserNeyLM, NGramLM, ngram_baselines
from course_lib.models.rnn import CharRNN, CharRNNConfig, detach_state
from course_lib.chapters import rnn_lm
from course_lib.chapters.char_lm import CharData, load_corpus
from course_lib.checkpoints import config_hash
from course_lib.profiles import for_profile, override
from course_lib.train import RunOptions, fit, fit_or_load


def test_stream_layout_carries_text_across_batches():
    ids = torch.arange(100)
    task = rnn_lm.CharLMTask(ids, ids, CharData(batch_size=4, seq_len=5))
    b0, b1 = task.batch(0), task.batch(1)
    assert b0["x"].shape == (4, 5) and b0["reset"] and not b1["reset"]
    assert torch.equal(b0["y"], b0["x"] + 1)                         # targets are shifted inputs
    assert torch.equal(b1["x"][:, 0], b0["x"][:, -1] + 1)            # row b continues row b
    assert b0["x"][1, 0] == 25                                       # stream 1 starts a quarter in
    assert task.batch(task.windows)["reset"]                          # wraps to a new epoch


def test_ngram_probabilities_by_hand():
    ids = torch.tensor([0, 1, 0, 1, 1])
    bigram = NGramLM(2, vocab_size=2, k=1.0).fit(ids)
    # counts: 0->1 twice, 1->0 once, 1->1 once; P(1|0) = (2+1)/(2+2), P(0|1) = (1+1)/(2+2)
    expected = -(math.log(3 / 4) + math.log(2 / 4)) / 2
    assert bigram.nll(torch.tensor([0, 1, 0])) == pytest.approx(expected)
    unigram = NGramLM(1, vocab_size=2, k=1.0).fit(ids)
    assert unigram.nll(torch.tensor([1])) == pytest.approx(-math.log(4 / 7))


def test_ngram_rejects_bad_input():
    with pytest.raises(ValueError, match="k > 0"):
        NGramLM(2, 3, k=0)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        NGramLM(2, 3).fit(torch.tensor([0, 1, 5]))
    with pytest.raises(ValueError, match="integer tensor"):
        NGramLM(2, 3).fit(torch.tensor([0.0, 1.0]))
    with pytest.raises(RuntimeError, match="fit"):
        NGramLM(2, 3).nll(torch.tensor([0, 1]))


def _kneser_ney_by_dicts(train: list[int], V: int, n: int):
    """Interpolated Kneser-Ney written the slow way, with dictionaries: the reference for KneserNeyLM."""
    from collections import Counter
    grams = Counter(tuple(train[i:i + n]) for i in range(len(train) - n + 1))
    levels = {n: grams}
    for m in range(n - 1, 0, -1):                     # continuation counts: distinct symbols before each m-gram
        levels[m] = Counter(g[1:] for g in levels[m + 1])
    discount = {}
    for m, counts in levels.items():
        n1 = sum(1 for c in counts.values() if c == 1)
        n2 = sum(1 for c in counts.values() if c == 2)
        discount[m] = n1 / (n1 + 2 * n2) if n1 else 0.5

    def prob(context: tuple, c: int, m: int) -> float:
        lower = 1 / V if m == 1 else prob(context[1:], c, m - 1)
        h = context[len(context) - (m - 1):] if m > 1 else ()
        followers = {g[-1]: cnt for g, cnt in levels[m].items() if g[:-1] == h}
        total = sum(followers.values())
        if total == 0:
            return lower
        d = discount[m]
        return (max(followers.get(c, 0) - d, 0) + d * len(followers) * lower) / total
    return prob


def test_kneser_ney_equals_the_formula_and_sums_to_one():
    g = torch.Generator().manual_seed(0)
    V, n = 5, 3
    train = torch.randint(0, V, (300,), generator=g)
    train[100:140] = torch.tensor([0, 1, 2, 3] * 10)                   # some repeated structure
    val = torch.randint(0, V, (60,), generator=g)
    val[10] = 4                                                       # contexts never seen are handled too
    kn = KneserNeyLM(n, V).fit(train)
    prob = _kneser_ney_by_dicts(train.tolist(), V, n)
    want = torch.tensor([math.log(prob(tuple(val[t - 2:t].tolist()), int(val[t]), n)) for t in range(2, len(val))],
                        dtype=torch.float64)
    torch.testing.assert_close(kn.log_probs(val), want)
    for context in ([0, 1], [4, 4], [3, 2]):                          # a distribution over the next symbol
        rows = torch.tensor([context + [c] for c in range(V)])
        total = sum(float(kn.log_probs(r).exp()) for r in rows)
        assert total == pytest.approx(1.0, abs=1e-12)


def test_kneser_ney_beats_add_k_on_real_text():
    train, val = load_corpus()
    vocab = CharVocab.from_text(train)
    tr, va = vocab.encode(train[:400_000]), vocab.encode(val[:50_000])
    kn5 = KneserNeyLM(5, len(vocab)).fit(tr).nll(va)
    add_k = [NGramLM(n, len(vocab), k).fit(tr).nll(va[5 - n:]) for n in (3, 5) for k in (0.01, 0.1, 1.0)]
    assert kn5 < min(add_k) - 0.05, (kn5, add_k)                      # the point of a real smoothing method
    with pytest.raises(RuntimeError, match="fit"):
        KneserNeyLM(3, 4).nll(torch.tensor([0, 1, 2]))


def test_higher_order_ngrams_do_better_on_real_text():
    train, val = load_corpus()
    vocab = CharVocab.from_text(train)
    b = ngram_baselines(vocab.encode(train[:400_000]), vocab.encode(val[:50_000]), len(vocab))
    assert b["unigram"] > b["bigram"] > b["trigram"]
    assert 3.0 < b["unigram"] < 3.6                                     # measured 3.35 on the full split


def test_evaluation_can_reset_state_each_window():
    ids = torch.arange(4000) % 50                       # next id is fully determined by the current one
    model = CharRNN(CharRNNConfig(vocab_size=50, hidden_dim=8, layers=1))
    carried = rnn_lm.evaluate_nll(model, ids, seq_len=10, streams=4)
    reset = rnn_lm.evaluate_nll(model, ids, seq_len=10, streams=4, carry_state=False)
    assert carried != reset                             # the flag changes what the model sees
    relu = CharRNN(CharRNNConfig(vocab_size=5, cell="rnn_relu", hidden_dim=4, layers=1))
    assert relu.rnn.nonlinearity == "relu"


def test_model_shapes_and_errors():
    model = CharRNN(CharRNNConfig(vocab_size=10, hidden_dim=8, layers=2))
    logits, state = model(torch.zeros(3, 7, dtype=torch.long))
    assert logits.shape == (3, 7, 10) and state[0].shape == (2, 3, 8)
    assert not detach_state(state)[0].requires_grad
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        model(torch.zeros(7, dtype=torch.long))
    with pytest.raises(ValueError, match="unknown cell"):
        CharRNN(CharRNNConfig(vocab_size=10, cell="transformer"))


@pytest.fixture(scope="module")
def smoke_metrics(tmp_path_factory):
    out = tmp_path_factory.mktemp("rnn_smoke")
    assert main(["train", "rnn_lm", "--profile", "smoke", "--out", str(out), "--quiet"]) == 0
    return json.loads((out / "metrics.json").read_text()), out


@pytest.mark.slow
def test_smoke_run_learns_below_baselines(smoke_metrics):
    metrics, _ = smoke_metrics
    val = metrics["metrics"]["val_nats_per_char"]
    # measured (2 cores, seed 0): val 2.26 nats/char vs unigram 3.35 and bigram 2.44
    assert val < metrics["baselines"]["unigram_nats_per_char"] - 0.8
    assert val < metrics["baselines"]["bigram_nats_per_char"] - 0.05


@pytest.mark.slow
def test_metrics_json_schema(smoke_metrics):
    metrics, out = smoke_metrics
    for key in ("chapter", "profile", "device", "steps", "wall_s", "throughput", "metrics", "baselines",
                "config", "checkpoint", "git_commit", "torch"):
        assert key in metrics, key
    assert metrics["chapter"] == "rnn_lm" and metrics["profile"] == "smoke" and metrics["steps"] == 150
    assert metrics["throughput"]["unit"] == "chars/s" and metrics["throughput"]["value"] > 0
    assert set(metrics["metrics"]) == {"val_nats_per_char", "val_bits_per_char", "val_perplexity"}
    assert metrics["baselines"]["kneser_ney_3gram_nats_per_char"] < metrics["baselines"]["unigram_nats_per_char"]
    assert len(metrics["sample"]["text"]) == 201 and metrics["sample"]["top_k"] == 40
    nats = metrics["metrics"]["val_nats_per_char"]
    assert metrics["metrics"]["val_bits_per_char"] == pytest.approx(nats / math.log(2), abs=1e-3)
    assert (out / "checkpoint.pt").exists() and (out / "history.json").exists()


@pytest.mark.slow
def test_cli_text_file_and_seconds_cap(tmp_path):
    corpus = tmp_path / "mine.txt"
    corpus.write_text(("the quick brown fox jumps over the lazy dog.\n" * 120), encoding="utf-8")
    out = tmp_path / "run"
    code = main(["train", "rnn_lm", "--profile", "smoke", "--text", str(corpus), "--steps", "30",
                 "--out", str(out), "--quiet"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["source"].endswith("mine.txt") and metrics["data"]["train_chars"] > 4000
    assert metrics["metrics"]["val_nats_per_char"] < metrics["baselines"]["unigram_nats_per_char"]
    capped = tmp_path / "capped"
    assert main(["train", "rnn_lm", "--profile", "smoke", "--max-seconds", "0.001", "--out", str(capped),
                 "--quiet"]) == 0
    assert json.loads((capped / "metrics.json").read_text())["stopped_early"] is True


@pytest.mark.slow
def test_cli_trains_on_the_chinese_poems_that_ship(tmp_path, capsys):
    """``--text songci``: 4,000+ distinct characters; the Kneser-Ney baseline and a top-k sample in Chinese."""
    out = tmp_path / "songci"
    assert main(["train", "rnn_lm", "--profile", "smoke", "--text", "songci", "--steps", "40", "--out", str(out),
                 "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["source"] == "songci" and metrics["data"]["vocab_size"] > 4000
    base = metrics["baselines"]
    # on a large alphabet add-k over-smooths: the bigram is worse than Kneser-Ney's trigram by far
    assert base["kneser_ney_3gram_nats_per_char"] < base["bigram_nats_per_char"] - 0.3
    # measured (smoke, 40 steps): unigram 6.21, bigram 5.52, add-k trigram 6.91 (worse than the unigram: 4,226
    # characters share the smoothing mass), Kneser-Ney trigram 4.81 nats/char
    assert base["trigram_nats_per_char"] > base["unigram_nats_per_char"]
    sample = metrics["sample"]["text"]          # 40 steps write mostly punctuation: 37 of 201 were characters
    assert len(sample) == 201 and sum("\u4e00" <= c <= "\u9fff" for c in sample) > 15
    assert "sample (temperature 0.8, top 40)" in capsys.readouterr().out


def test_the_song_ci_text_is_checked_and_split_like_a_file():
    from course_lib.chapters.char_lm import load_corpus
    from course_lib.data.songci import load_songci, songci_text
    poems = load_songci()
    assert len(poems) == 3629 and all(p["paragraphs"] and p["author"] for p in poems)
    text = songci_text()
    assert 320_000 < len(text) < 340_000 and len(set(text)) > 4000
    train, val = load_corpus("songci")
    assert train + val == text and 0.89 < len(train) / len(text) < 0.91 and train.endswith("\n")


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main(["train", "rnn_lm", "--profile", "huge", "--out", str(tmp_path)]) == 2
    assert "expected one of: smoke, class, full" in capsys.readouterr().err
    assert main(["train", "nonsense", "--out", str(tmp_path)]) == 2
    assert "unknown chapter" in capsys.readouterr().err
    assert main(["train", "rnn_lm", "--text", str(tmp_path / "missing.txt"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_resume_continues(tmp_path):
    out = tmp_path / "r"
    assert main(["train", "rnn_lm", "--profile", "smoke", "--steps", "10", "--out", str(out), "--quiet"]) == 0
    assert main(["train", "rnn_lm", "--profile", "smoke", "--steps", "10", "--out", str(out), "--quiet",
                 "--resume"]) == 0
    assert json.loads((out / "metrics.json").read_text())["steps"] == 10


def test_profiles_scale_up():
    smoke, klass, full = (for_profile(rnn_lm.Config, p) for p in ("smoke", "class", "full"))
    assert smoke.train.steps < klass.train.steps < full.train.steps
    assert smoke.model.hidden_dim <= klass.model.hidden_dim <= full.model.hidden_dim


def test_both_lm_chapters_share_data_and_budgets():
    from course_lib.chapters import transformer_lm
    for p in ("smoke", "class", "full"):
        r, t = for_profile(rnn_lm.Config, p), for_profile(transformer_lm.Config, p)
        assert r.data == t.data and r.train.steps == t.train.steps


def _tiny(**train):
    return for_profile(rnn_lm.Config, "smoke", {"model.hidden_dim": 32, "data.batch_size": 8, "data.seq_len": 16,
                                                "data.eval_chars": 2000, "train.steps": 6,
                                                **{f"train.{k}": v for k, v in train.items()}})


def _fit_or_load(cfg, folder):
    s = rnn_lm.build(cfg)
    return fit_or_load(s.model, s.task, s.train, folder, progress=False)


def test_fit_or_load_trains_then_loads_then_resumes(tmp_path):
    cfg = _tiny()
    first, how = _fit_or_load(cfg, tmp_path / "a")
    assert how.startswith("trained (no checkpoint")
    again, how = _fit_or_load(cfg, tmp_path / "a")                  # a fresh, untrained model
    assert how.startswith("loaded") and again.loaded and again.steps == 6
    assert again.final["val_nats_per_char"] == pytest.approx(first.final["val_nats_per_char"], abs=1e-6)
    assert again.history == first.history and again.items_per_s > 0
    # other settings: the checkpoint is not used, the model trains and replaces it
    _, how = _fit_or_load(_tiny(lr=1e-3), tmp_path / "a")
    assert how.startswith("trained (it was made by other settings")
    # an interrupted run with the same settings is resumed to exactly the straight run's result
    s = rnn_lm.build(cfg)
    fit(s.model, s.task, s.train, run=RunOptions(out_dir=tmp_path / "b", progress=False, max_seconds=0))
    resumed, how = _fit_or_load(cfg, tmp_path / "b")
    assert how == "trained (it stopped at step 1 of 6)"
    assert resumed.final["val_nats_per_char"] == pytest.approx(first.final["val_nats_per_char"], abs=1e-6)


def test_study_budgets_never_enter_the_fingerprint():
    """Only what the weights depend on is hashed: a different eval size is another run, the profile name is not."""
    a, b = rnn_lm.build(_tiny()), rnn_lm.build(dataclasses.replace(_tiny(), profile="class"))
    assert config_hash(a.fingerprint()) == config_hash(b.fingerprint())
    c = rnn_lm.build(override(_tiny(), {"model.hidden_dim": 16}))
    assert config_hash(a.fingerprint()) != config_hash(c.fingerprint())


def test_lm_loss_needs_a_target():
    from course_lib.objectives.lm import lm_loss
    with pytest.raises(ValueError, match="at least one target"):
        lm_loss(torch.zeros(2, 0, 5), torch.zeros(2, 0, dtype=torch.long))


def test_ngram_counts_are_sparse_and_equal_dense_counting():
    """A 3,000-character alphabet (a Chinese text) needs no 3,000**3 dense trigram table."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 3000, (20_000,), generator=g)
    tri = NGramLM(3, 3000).fit(ids[:15_000])
    assert len(tri.grams) <= 15_000 and tri.context_totals.sum() == 15_000 - 2
    small = torch.randint(0, 7, (500,), generator=g)               # dense counting by hand, as the formula says
    model = NGramLM(2, 7, k=0.5).fit(small[:400])
    counts = torch.zeros(7, 7, dtype=torch.float64)
    for a, b in zip(small[:399].tolist(), small[1:400].tolist()):
        counts[a, b] += 1
    val = small[400:]
    p = (counts[val[:-1], val[1:]] + 0.5) / (counts.sum(1)[val[:-1]] + 0.5 * 7)
    assert model.nll(val) == pytest.approx(float(-p.log().mean()), rel=1e-12)
    cjk = "".join(chr(0x4E00 + int(i)) for i in ids[:6000])        # a CJK "text" through the chapter's baselines
    vocab = CharVocab.from_text(cjk)
    out = ngram_baselines(vocab.encode(cjk[:5000]), vocab.encode(cjk[5000:]), len(vocab))
    assert set(out) == {"unigram", "bigram", "trigram"} and all(math.isfinite(v) for v in out.values())


def test_counting_in_slices_equals_counting_at_once(monkeypatch):
    """n-grams are counted in slices (memory ~ a slice); the counts, across slice borders too, are the same."""
    import course_lib.models.ngram as ngram
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 5, (3000,), generator=g).to(torch.uint8)            # compact ids, as encode_corpus stores
    whole = NGramLM(3, 5).fit(ids.long())
    monkeypatch.setattr(ngram, "COUNT_SLICE", 700)
    sliced = NGramLM(3, 5).fit(ids)
    assert torch.equal(sliced.grams, whole.grams) and torch.equal(sliced.gram_counts, whole.gram_counts)
    assert sliced.context_totals.sum() == 3000 - 2


def test_compact_encoding_round_trips_and_is_smaller():
    from course_lib.data.text import compact_dtype
    text = "To be, or not to be: that is the question. 你好\n" * 50
    vocab = CharVocab.from_text(text)
    ids = vocab.encode(text, compact_dtype(len(vocab)))
    assert ids.dtype == torch.uint8 and vocab.decode(ids) == text
    assert torch.equal(ids.long(), vocab.encode(text)) and ids.nbytes * 8 == vocab.encode(text).nbytes
    assert vocab.encode("zq~").tolist() == [0, vocab.stoi["q"], 0]          # unseen characters are id 0
    assert compact_dtype(256) == torch.uint8 and compact_dtype(257) == torch.int16
    assert compact_dtype(40_000) == torch.int32
    with pytest.raises(ValueError, match="do not fit"):
        CharVocab.from_text("".join(chr(0x4E00 + i) for i in range(300))).encode("x", torch.uint8)


def test_a_text_too_large_for_memory_is_warned_before_any_work(tmp_path, monkeypatch):
    from course_lib.chapters import char_lm
    path = tmp_path / "t.txt"
    path.write_text("to be or not to be\n" * 1000)
    monkeypatch.setattr(char_lm, "available_memory", lambda: 100_000)         # 19 kB of text x 16 > 100 kB
    with pytest.warns(RuntimeWarning, match="bytes per character"):
        char_lm.load_corpus(str(path))
    monkeypatch.setattr(char_lm, "available_memory", lambda: 10**9)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        char_lm.load_corpus(str(path))
