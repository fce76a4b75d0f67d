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
# # 01 · Attention: from dot products to multi-head attention, every equation checked
#
# Attention is the part of a Transformer that lets each position *look things up* in the
# rest of the sequence. It is the base of the masked language model (notebook 02) and of
# the causal Transformer LM (notebook 05), and it is where tutorials most often get the
# math wrong. Here every equation is followed by a number that checks it.
#
# **You will learn to**
# - derive attention as *similarity → softmax → weighted average*, and write
#   $\mathrm{softmax}(QK^\top/\sqrt{d_k})\,V$ with every tensor's shape;
# - explain (with measurements) why the scores are divided by $\sqrt{d_k}$;
# - use padding and causal masks, self- and cross-attention, and multi-head attention;
# - show that attention without positions ignores word order, and add positional encodings;
# - measure the $O(T^2)$ memory and what the time is made of, check your code against
#   PyTorch, and watch a tiny Transformer *learn* where to attend.
#
# **Prerequisites:** matrix multiplication, the softmax, PyTorch tensors and `nn.Module`
# (notebook 00). Run the cells top to bottom; `COURSE_PROFILE=smoke|class|full` picks the sizes.

# %% tags=["parameters"]
from course_lib.profiles import resolve_profile
from course_lib.runtime import print_environment, seed_everything, pick_device
PROFILE = resolve_profile()   # set COURSE_PROFILE=smoke|class|full, or pass a name here
SEED = 0
seed_everything(SEED)
DEVICE = pick_device()
print_environment(PROFILE, SEED)

# %%
import collections
import json
import math
import re
import time
from pathlib import Path

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import attention as A
from course_lib.notebook.checks import check_close, check_true
from course_lib.data.text import load_plays
from course_lib.profiles import for_profile, override
from course_lib.notebook.report import record
from course_lib.train import QUIET, RunOptions, fit
from course_lib.notebook.viz import explore, heatmap, plot_history

torch.set_printoptions(precision=3, sci_mode=False, linewidth=120)

# %% [markdown] tags=["slide"]
# ## 1. The idea: similarity → softmax → weighted average
#
# You have a set of items. Each has a **key** $k_j$ (what it is about) and a **value** $v_j$
# (what it contains). You arrive with a **query** $q$ (what you are looking for).
#
# 1. Score each item by how well its key matches the query — a dot product:
#    $s_j = q \cdot k_j$.
# 2. Turn the scores into weights that are positive and sum to one — the softmax:
#    $a_j = \dfrac{e^{s_j}}{\sum_{j'} e^{s_{j'}}}$.
# 3. Return the weighted average of the values: $o = \sum_j a_j v_j$.
#
# A soft dictionary look-up: instead of returning the one value whose key matches, return a
# blend, weighted by how well each key matches. Because every step is differentiable, a network
# can *learn* what to look for.

# %%
keys = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7], [-1.0, 0.0]])              # (4 items, 2)
values = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])  # (4 items, 3)
query = torch.tensor([2.0, 0.5])                                                     # (2,)

scores = keys @ query                          # s_j = q · k_j            (4,)
weights = scores.exp() / scores.exp().sum()    # a_j = softmax(s)_j       (4,)
output = weights @ values                      # o = Σ_j a_j v_j          (3,)
print("scores :", scores)
print("weights:", weights)
print("output :", output)

other_query = torch.tensor([-1.0, 2.0])        # ask for something else ...
print("weights for another query:", torch.softmax(keys @ other_query, dim=0))  # ... get other weights

# %% [markdown]
# Each equation, checked numerically (these `PASS` lines are compared by the test suite):

# %%
# NBVAL_CHECK_OUTPUT
check_close("scores are dot products q.k_j", scores, torch.stack([query.dot(k) for k in keys]))
check_close("weights sum to 1", weights.sum(), torch.tensor(1.0))
check_close("weights equal torch.softmax", weights, torch.softmax(scores, dim=0))
check_close("output is the weighted average of the values", output, sum(a * v for a, v in zip(weights, values)));

# %% [markdown] tags=["slide"]
# ## 2. A worked example on a real line of Shakespeare
#
# We take Hamlet's line from the plays in `course_lib.data.text.load_plays()` and compute
# everything attention does to it: embeddings, $Q$, $K$, $V$, scores, weights, outputs.
#
# **Embeddings, counted rather than invented.** A word vector needs to put similar words near
# each other. We get small ($D=8$) vectors from the plays themselves: count how often each pair
# of words occurs within two words of each other, turn counts into *positive pointwise mutual
# information* $\max(0, \log \frac{p(w,c)}{p(w)p(c)})$, and keep the top 8 singular directions
# (Levy & Goldberg, 2014, show this is close to what word2vec learns). Each vector is scaled to
# length $\sqrt{D}$, so its entries have roughly unit variance.

# %%
plays = load_plays()
hamlet = next(p for p in plays if p.slug == "hamlet")
line = next(l for s in hamlet.speeches if s.speaker == "HAMLET" for l in s.lines if l.startswith("To be, or not"))
caesar = next(p for p in plays if p.slug == "julius-caesar")
other_line = next(l for s in caesar.speeches for l in s.lines if l.startswith("Friends, Romans"))


def words_of(text):
    return re.findall(r"[a-z']+", text.lower())


tokens, other_tokens = words_of(line), words_of(other_line)
print(f"Hamlet: {line!r}\n  -> {tokens}")
print(f"Antony: {other_line!r}\n  -> {other_tokens}")

# %%
EMB_DIM, VOCAB = 8, 3000
corpus = [w for p in plays for s in p.speeches for l in s.lines for w in words_of(l)]
vocab = [w for w, _ in collections.Counter(corpus).most_common(VOCAB)]
stoi = {w: i for i, w in enumerate(vocab)}
ids = np.array([stoi.get(w, -1) for w in corpus])
counts = np.zeros(VOCAB * VOCAB)
for offset in (1, 2):                                   # neighbours up to two words away, both sides
    a, b = ids[:-offset], ids[offset:]
    ok = (a >= 0) & (b >= 0)
    counts += np.bincount(a[ok] * VOCAB + b[ok], minlength=VOCAB**2)
    counts += np.bincount(b[ok] * VOCAB + a[ok], minlength=VOCAB**2)
C = counts.reshape(VOCAB, VOCAB)
expected = C.sum(1, keepdims=True) * C.sum(0, keepdims=True) / C.sum()
ppmi = np.where(C > 0, np.maximum(np.log(np.maximum(C, 1.0) / expected), 0.0), 0.0)
torch.manual_seed(SEED)                                 # svd_lowrank is randomised: fix it, so re-runs agree
U, S, _ = torch.svd_lowrank(torch.tensor(ppmi, dtype=torch.float32), q=EMB_DIM, niter=6)
U = U * torch.sign(U[U.abs().argmax(0), torch.arange(EMB_DIM)])   # a fixed sign per direction
emb = U * S.sqrt()
emb = emb / emb.norm(dim=1, keepdim=True) * math.sqrt(EMB_DIM)  # (VOCAB, D), each row of length √D

print(f"{len(corpus):,} words in the plays; vocabulary of the {VOCAB} most frequent")
print("missing from the vocabulary:", [w for w in tokens + other_tokens if w not in stoi])
unit = emb / emb.norm(dim=1, keepdim=True)
for w in ["king", "love", "question", "ears"]:
    near = (unit @ unit[stoi[w]]).argsort(descending=True)[1:6]
    print(f"nearest to {w!r:11s}:", [vocab[i] for i in near])

# %% [markdown]
# The nearest neighbours are sensible (*king* sits near *duke*, *queen*, *father*; *ears* near
# *mouth*), so dot products between these vectors measure similarity — crudely: 8 numbers per word. The sentence becomes a matrix $X$ with one row per word:
# $X \in \mathbb{R}^{T \times D}$, here $T=10$, $D=8$.

# %%
X = emb[[stoi[w] for w in tokens]]                      # (T, D) = (10, 8)
X_other = emb[[stoi[w] for w in other_tokens]]          # (7, 8)
T, D = X.shape
print("X", tuple(X.shape))
print(X)

# %% [markdown]
# ### 2a. Attention with no projections: $Q = K = V = X$
#
# Every word is a query, a key and a value at once. Scores $S = XX^\top/\sqrt{D}$ are a
# $T\times T$ matrix: row $i$ holds word $i$'s scores for every word $j$. The softmax runs along
# each row (over the keys), so each row of the weights sums to 1.

# %% tags=["slide"]
S0 = X @ X.T / math.sqrt(D)                             # (T, T) scores
W0 = torch.softmax(S0, dim=-1)                          # (T, T) weights, softmax over keys (last axis)
O0 = W0 @ X                                             # (T, D) outputs: each a blend of word vectors
print("scores (row = query word, column = key word):\n", S0)
print("row sums of the weights:", W0.sum(-1))
fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
heatmap(S0, tokens, tokens, ax=axes[0], title="scores  X Xᵀ / √D", cmap="coolwarm")
heatmap(W0, tokens, tokens, ax=axes[1], title="weights  softmax over each row")
for ax in axes:
    ax.set(xlabel="key word j", ylabel="query word i")
plt.show()

# %% [markdown]
# Both *to*'s (and both *be*'s) have identical rows: the same word with the same vector asks the
# same question. Each word attends most to itself (a vector is most similar to itself), then to
# related words. Nothing here was learned, and nothing knows *where* a word is — section 8
# comes back to that.
#
# ### 2b. Queries, keys and values as learned projections
#
# A word should be able to look for something *other* than itself. So a layer owns three
# matrices and projects each word three ways:
# $Q = XW_Q,\; K = XW_K,\; V = XW_V$, with $W_Q, W_K \in \mathbb{R}^{D\times d_k}$ and
# $W_V \in \mathbb{R}^{D\times d_v}$. Training sets them (section 10); here they are drawn at random
# (seeded), so the pattern below is not yet meaningful — only the arithmetic is.
#
# **Which random scale?** We draw every entry of $W_Q, W_K, W_V$ from $\mathcal{N}(0, 1/D)$. An entry
# of $q = xW_Q$ is then a sum $\sum_{i=1}^{D} x_i W_{ij}$ of independent terms with variance
# $\lVert x\rVert^2/D$, which is exactly 1 for our word vectors of length $\sqrt D$: queries and keys
# start with unit-variance entries, the assumption of section 4. This is *not* what an untrained
# `nn.Linear(D, d_k)` does: PyTorch draws its weights from the uniform $\mathcal{U}(-1/\sqrt D,\,
# 1/\sqrt D)$, of variance $1/(3D)$, so its query entries start with variance $1/3$ (and the course's
# Transformer, `course_lib.models.transformer`, draws $\mathcal{N}(0, 0.02^2)$). Training moves all of
# them; the initial scale only sets where it starts. Both variances are measured after the example.

# %% tags=["slide"]
d_k = d_v = 4
gen = torch.Generator().manual_seed(SEED)
W_Q, W_K, W_V = (torch.randn(D, d, generator=gen) / math.sqrt(D) for d in (d_k, d_k, d_v))
Q, K, V = X @ W_Q, X @ W_K, X @ W_V                     # (T, d_k), (T, d_k), (T, d_v)
scores1 = Q @ K.T / math.sqrt(d_k)                      # (T, T)
weights1 = torch.softmax(scores1, dim=-1)               # (T, T)
out1 = weights1 @ V                                     # (T, d_v)
print("Q", tuple(Q.shape), "K", tuple(K.shape), "V", tuple(V.shape), "-> out", tuple(out1.shape))
print("first three words (to, be, or):\nQ[:3] =\n", Q[:3], "\nK[:3] =\n", K[:3], "\nV[:3] =\n", V[:3])
fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
heatmap(weights1, tokens, tokens, ax=axes[0], title="weights softmax(QKᵀ/√d_k), random projections")
axes[0].set(xlabel="key word j", ylabel="query word i")
heatmap(out1, tokens, [f"v{j}" for j in range(d_v)], ax=axes[1], title="outputs  weights @ V", cmap="coolwarm")
axes[1].set(xlabel="output feature (d_v)", ylabel="query word i")
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
check_close("each weight row sums to 1", weights1.sum(-1), torch.ones(T))
check_close("output row 0 = sum_j a_0j v_j", out1[0], sum(weights1[0, j] * V[j] for j in range(T)))
check_close("worked example == course_lib.attention", out1, A.scaled_dot_product_attention(Q[None], K[None], V[None])[0][0]);

# %%
# Entries of q = x W for one word vector x (|x|² = D), over many random draws of W, for two initialisations
x_word = X[0]                                                          # (D,), 'to'
n_draws = 4000
g_init = torch.Generator().manual_seed(SEED)
W_normal = torch.randn(n_draws, D, d_k, generator=g_init) / math.sqrt(D)          # (draws, D, d_k), N(0, 1/D)
torch.manual_seed(SEED)
W_linear = torch.stack([nn.Linear(D, d_k, bias=False).weight.T.detach() for _ in range(n_draws)])  # PyTorch's init
init_var = {}
for name, W in (("N(0, 1/D)", W_normal), ("nn.Linear default", W_linear)):
    q_entries = torch.einsum("i,nij->nj", x_word, W)                   # (draws, d_k)
    init_var[name] = (float(W.var()), float(q_entries.var()))
    print(f"{name:18s}: Var(W entries) = {init_var[name][0]:.4f}   Var(q entries) = {init_var[name][1]:.3f}")
print(f"predicted: 1/D = {1 / D:.4f} and |x|²/D = {float(x_word.square().sum()) / D:.3f};  "
      f"1/(3D) = {1 / (3 * D):.4f} and |x|²/(3D) = {float(x_word.square().sum()) / (3 * D):.3f}")

# %%
# NBVAL_CHECK_OUTPUT
check_close("N(0, 1/D) weights: Var(W) = 1/D", torch.tensor(init_var["N(0, 1/D)"][0]), torch.tensor(1 / D), rtol=0.05)
check_close("N(0, 1/D) weights: Var(q) = |x|^2/D = 1", torch.tensor(init_var["N(0, 1/D)"][1]), torch.tensor(1.0), rtol=0.05)
check_close("nn.Linear's uniform init: Var(W) = 1/(3D)", torch.tensor(init_var["nn.Linear default"][0]),
            torch.tensor(1 / (3 * D)), rtol=0.05)
check_close("nn.Linear's uniform init: Var(q) = |x|^2/(3D) = 1/3", torch.tensor(init_var["nn.Linear default"][1]),
            torch.tensor(1 / 3), rtol=0.05);


# %% [markdown] tags=["slide"]
# ## 3. Scaled dot-product attention, with every shape
#
# $$\mathrm{Attention}(Q,K,V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}}\right)V
# \qquad\text{(Vaswani et al., 2017, eq. 1)}$$
#
#
# ![Q times K-transpose over root d_k gives the (T_q, T_k) scores; a mask sets forbidden ones to minus infinity; a softmax over the keys gives weights whose rows sum to 1; times V gives one output row per query](../docs/images/concept_attention_shapes.png)
# | tensor | shape | meaning |
# |---|---|---|
# | $Q$ | $(B, H, T_q, d_k)$ | one query per output position |
# | $K$ | $(B, H, T_k, d_k)$ | one key per position looked at |
# | $V$ | $(B, H, T_k, d_v)$ | one value per position looked at |
# | $S = QK^\top/\sqrt{d_k}$ | $(B, H, T_q, T_k)$ | score of query $i$ for key $j$ |
# | mask | broadcastable to $(B, H, T_q, T_k)$, bool | True = may attend |
# | $A = \mathrm{softmax}(S)$ along the **last** axis | $(B, H, T_q, T_k)$ | each row sums to 1 |
# | $O = AV$ | $(B, H, T_q, d_v)$ | one output per query |
#
# $B$ = batch, $H$ = heads (section 7). A mask sets forbidden scores to $-\infty$ **before**
# the softmax, so they get weight exactly 0 and the rest still sum to 1. From scratch:

# %%
def my_attention(q, k, v, mask=None):
    """softmax(q kᵀ/√d_k) v. q (..., Tq, d_k), k (..., Tk, d_k), v (..., Tk, d_v); mask True = may attend."""
    d_k = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)      # (..., Tq, Tk)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))  # before the softmax
    weights = torch.softmax(scores, dim=-1)                # over keys: each query's row sums to 1
    return weights @ v, weights                            # (..., Tq, d_v), (..., Tq, Tk)


def random_qkv(dtype, B=2, H=3, Tq=6, Tk=6, dk=8, dv=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, H, n, d, generator=g, dtype=dtype) for n, d in ((Tq, dk), (Tk, dk), (Tk, dv))]


keep = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])    # sequence 2 has 2 padding positions
masks = {"no mask": None, "causal": A.causal_mask(6), "padding": keep[:, None, None, :]}  # (B, 1, 1, Tk)
errors = {}
for dtype in (torch.float64, torch.float32):
    q, k, v = random_qkv(dtype)
    for name, mask in masks.items():
        reference = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        for impl, out in (("mine", my_attention(q, k, v, mask)[0]),
                          ("course_lib", A.scaled_dot_product_attention(q, k, v, mask)[0]),
                          ("course_lib fast", A.attend(q, k, v, mask))):
            errors[(str(dtype)[6:], name, impl)] = float((out - reference).abs().max())
print("largest |difference from torch SDPA| over the three masks (none, causal, padding):")
for dt in ("float64", "float32"):
    for impl in ("mine", "course_lib", "course_lib fast"):
        print(f"  {dt:8s} {impl:16s} {max(e for (d, _, i), e in errors.items() if (d, i) == (dt, impl)):.1e}")

# %%
# NBVAL_CHECK_OUTPUT
for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 1e-5)):
    q, k, v = random_qkv(dtype)
    tag = str(dtype)[6:]
    for name, mask in masks.items():
        mine = my_attention(q, k, v, mask)[0]
        lib = A.scaled_dot_product_attention(q, k, v, mask)[0]
        torch_sdpa = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        check_close(f"mine == course_lib ({name}, {tag})", mine, lib, atol=tol, rtol=tol)
        check_close(f"course_lib == torch SDPA ({name}, {tag})", lib, torch_sdpa, atol=tol, rtol=tol)
        check_close(f"course_lib fast path == torch SDPA ({name}, {tag})", A.attend(q, k, v, mask), torch_sdpa,
                    atol=tol, rtol=tol);

# %% [markdown]
# Equal outputs do not prove equal gradients. `torch.autograd.gradcheck` compares the
# backward pass with finite differences, in float64:

# %%
# NBVAL_CHECK_OUTPUT
small = [t[:1, :2, :4, :4].clone().requires_grad_(True) for t in random_qkv(torch.float64)]
causal4 = A.causal_mask(4)
check_true("gradcheck: my_attention (causal, float64)",
           torch.autograd.gradcheck(lambda q, k, v: my_attention(q, k, v, causal4)[0], small))
check_true("gradcheck: course_lib scaled_dot_product_attention (float64)",
           torch.autograd.gradcheck(lambda q, k, v: A.scaled_dot_product_attention(q, k, v, causal4)[0], small))
check_true("gradcheck: course_lib attend, the SDPA fast path (float64)",
           torch.autograd.gradcheck(lambda q, k, v: A.attend(q, k, v, causal4), small));

# %% [markdown] tags=["slide"]
# ## 4. Why divide by $\sqrt{d_k}$?
#
# If the entries of $q$ and $k$ are independent with mean 0 and variance 1, then
# $q\cdot k = \sum_{i=1}^{d_k} q_i k_i$ is a sum of $d_k$ independent terms, each of mean 0 and
# variance $\mathrm{E}[q_i^2]\mathrm{E}[k_i^2] = 1$. So
#
# $$\mathrm{Var}(q\cdot k) = d_k, \qquad \mathrm{Var}\!\left(\frac{q\cdot k}{\sqrt{d_k}}\right) = 1.$$
#
# Measured:

# %%
gen = torch.Generator().manual_seed(SEED)
dims = [4, 16, 64, 256, 1024]
ratios = []
for d in dims:
    qs, ks = torch.randn(20000, d, generator=gen), torch.randn(20000, d, generator=gen)
    dots = (qs * ks).sum(-1)
    ratios.append(float(dots.var() / d))
    print(f"d_k={d:5d}: Var(q·k) = {float(dots.var()):8.1f}   Var/d_k = {ratios[-1]:.3f}   "
          f"Var(q·k/√d_k) = {float((dots / math.sqrt(d)).var()):.3f}")

# %%
# NBVAL_CHECK_OUTPUT
check_close("Var(q.k) / d_k is about 1 for every d_k", torch.tensor(ratios), torch.ones(len(dims)), atol=0.08);


# %% [markdown]
# **Why it matters: softmax saturation.** With variance $d_k$, the scores of a large head
# spread over tens of units, the softmax puts almost all weight on one key, and its Jacobian
# $\partial a/\partial s = \mathrm{diag}(a) - aa^\top$ goes to zero. Gradients no longer reach
# $W_Q$ and $W_K$: the layer stops learning where to look. We measure, for 512 random queries
# and 32 keys, the average largest weight, the fraction of nearly one-hot rows (max weight >
# 0.99), and the median norm of $\partial L/\partial s$ per row for a random upstream gradient —
# obtained by backpropagation.

# %% tags=["slide-more"]
def saturation(d, scaled, n_queries=512, n_keys=32, seed=0):
    """(mean max weight, fraction of rows with max weight > 0.99, median per-row |dL/ds|)."""
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(n_queries, d, generator=g), torch.randn(n_keys, d, generator=g)
    upstream = torch.randn(n_queries, n_keys, generator=g)       # dL/da, a random direction
    s = (q @ k.T / (math.sqrt(d) if scaled else 1.0)).requires_grad_(True)
    a = torch.softmax(s, dim=-1)
    (a * upstream).sum().backward()
    top = a.detach().max(-1).values
    return float(top.mean()), float((top > 0.99).float().mean()), float(s.grad.norm(dim=-1).median())


rows = {(d, sc): saturation(d, sc) for d in dims for sc in (True, False)}
print(f"{'d_k':>5s} | {'scaled: max w':>13s} {'one-hot':>8s} {'|grad|':>9s} | {'unscaled: max w':>15s} {'one-hot':>8s} {'|grad|':>9s}")
for d in dims:
    (m1, f1, g1), (m2, f2, g2) = rows[(d, True)], rows[(d, False)]
    print(f"{d:5d} | {m1:13.3f} {f1:8.1%} {g1:9.2e} | {m2:15.3f} {f2:8.1%} {g2:9.2e}")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
for sc, style in ((True, "o-"), (False, "s--")):
    label = "softmax(QKᵀ/√d_k)" if sc else "softmax(QKᵀ)  (no scaling)"
    axes[0].plot(dims, [rows[(d, sc)][0] for d in dims], style, label=label)
    axes[1].plot(dims, [rows[(d, sc)][2] for d in dims], style, label=label)
axes[0].set(xscale="log", xlabel="d_k", ylabel="mean largest weight", title="saturation")
axes[1].set(xscale="log", yscale="log", xlabel="d_k", ylabel="median |∂L/∂scores| per query",
            title="gradient reaching the scores")
for ax in axes:
    ax.set_xticks(dims, [str(n) for n in dims])
    ax.minorticks_off()
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()

# %% [markdown] tags=["slide"]
# ## 5. Masks: padding and causal
#
# Masks are boolean, **True = may attend**, and are applied to the scores before the softmax.
#
# * **Padding mask** — sequences in a batch have different lengths and are padded; no query may
#   attend to a padding key. `A.padding_mask(ids, pad_id)` gives shape $(B,1,1,T)$, which
#   broadcasts over heads and queries.
# * **Causal mask** — a language model predicting word $t+1$ may only see words $\le t$:
#   `A.causal_mask(T)` is lower-triangular $(T,T)$.
#
# Our two lines as one padded batch (the shorter is padded with a PAD id; its vector is zero):

# %% tags=["slide-more"]
PAD = VOCAB                                                    # an id outside the vocabulary
emb_pad = torch.cat([emb, torch.zeros(1, EMB_DIM)])            # (VOCAB + 1, D), PAD -> zero vector
batch_ids = torch.full((2, T), PAD)
batch_ids[0, :T] = torch.tensor([stoi[w] for w in tokens])
batch_ids[1, :len(other_tokens)] = torch.tensor([stoi[w] for w in other_tokens])
Xb = emb_pad[batch_ids]                                        # (B=2, T=10, D)
pad_mask = A.padding_mask(batch_ids, PAD)                      # (2, 1, 1, 10)
out_b, w_b = A.scaled_dot_product_attention(Xb, Xb, Xb, pad_mask[:, 0])   # 3-D inputs: mask (2, 1, 10)
labels2 = other_tokens + ["PAD"] * (T - len(other_tokens))
print("pad_mask for sequence 2:", pad_mask[1, 0, 0].tolist())
fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
heatmap(w_b[1], labels2, labels2, ax=axes[0], title="padding mask: no weight on PAD keys")
causal = A.causal_mask(T)
out_c, w_c = A.scaled_dot_product_attention(X[None], X[None], X[None], causal)
heatmap(w_c[0], tokens, tokens, ax=axes[1], title="causal mask: query t sees keys ≤ t")
for ax in axes:
    ax.set(xlabel="key word j", ylabel="query word i")
plt.show()

# %% [markdown]
# Padding rows (PAD as a *query*) still get outputs; they are simply ignored by the loss. What
# the masks promise, checked: padding keys get weight 0 and their content cannot change any
# output; with a causal mask, changing future words cannot change earlier outputs.

# %%
Xb_changed = Xb.clone()
Xb_changed[1, len(other_tokens):] = torch.randn(T - len(other_tokens), D, generator=torch.Generator().manual_seed(1))
out_b2, _ = A.scaled_dot_product_attention(Xb_changed, Xb_changed, Xb_changed, pad_mask[:, 0])
X_future = X.clone()
X_future[6:] = torch.randn(T - 6, D, generator=torch.Generator().manual_seed(2))   # change words 6..9
out_c2, _ = A.scaled_dot_product_attention(X_future[None], X_future[None], X_future[None], causal)

# %%
# NBVAL_CHECK_OUTPUT
n_real = len(other_tokens)
check_close("padding keys get weight 0", w_b[1][:, n_real:], torch.zeros(T, T - n_real))
check_close("padding content does not change real outputs", out_b2[1, :n_real], out_b[1, :n_real])
check_close("causal: weights above the diagonal are 0", w_c[0].triu(1), torch.zeros(T, T))
check_close("causal: future words do not change earlier outputs", out_c2[0, :6], out_c[0, :6]);

# %% [markdown]
# **A fully-masked row.** If a query may attend to *nothing* (e.g. a PAD query under a causal +
# padding mask at the start of a left-padded sequence), the naive code computes
# $\mathrm{softmax}(-\infty,\dots,-\infty) = 0/0$ = NaN, and the NaN spreads through the network.
# `course_lib.attention` defines the answer instead: all-zero weights and an all-zero output
# (in both the from-scratch and the fast path).

# %%
nothing = A.causal_mask(4).clone()
nothing[2] = False                                             # query 2 may look at nothing
q4, k4, v4 = random_qkv(torch.float32, B=1, H=1, Tq=4, Tk=4)
print("naive my_attention, row 2:", my_attention(q4, k4, v4, nothing)[0][0, 0, 2])
print("course_lib,         row 2:", A.scaled_dot_product_attention(q4, k4, v4, nothing)[0][0, 0, 2])
print("course_lib fast,    row 2:", A.attend(q4, k4, v4, nothing)[0, 0, 2])

# %% [markdown] tags=["slide"]
# ## 6. Self-attention vs cross-attention
#
# In **self-attention** $Q$, $K$ and $V$ all come from the same sequence. In
# **cross-attention** the queries come from one sequence and the keys and values from another
# (a translation decoder querying the source sentence; an image captioner querying image
# patches). Nothing in the formula changes — only the shapes: $T_q \ne T_k$ is allowed, and the
# weight matrix is $T_q\times T_k$. Hamlet's words querying Antony's:

# %% tags=["slide-more"]
out_x, w_x = A.scaled_dot_product_attention(X[None], X_other[None], X_other[None])   # Q: (1,10,D); K,V: (1,7,D)
print("queries", tuple(X.shape), " keys/values", tuple(X_other.shape), " -> weights", tuple(w_x.shape[1:]),
      " outputs", tuple(out_x.shape[1:]))
heatmap(w_x[0], tokens, other_tokens, title="cross-attention: Hamlet's words (rows) attend to Antony's (columns)")
plt.gca().set(xlabel="key: Antony's words", ylabel="query: Hamlet's words")
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
check_true("cross-attention weights are (Tq, Tk) = (10, 7)", tuple(w_x.shape[1:]) == (10, 7))
check_close("cross-attention rows sum to 1", w_x.sum(-1), torch.ones(1, 10));


# %% [markdown] tags=["slide"]
# ## 7. Multi-head attention
#
# One softmax gives each query one way of distributing its attention. Multi-head attention runs
# $H$ attentions side by side, each on its own $d = D/H$-wide projection, so one head can track
# (say) the previous word while another tracks the subject:
#
# $$\mathrm{head}_h = \mathrm{Attention}(X_q W_Q^{h},\, X_{kv} W_K^{h},\, X_{kv} W_V^{h}),\qquad
# \mathrm{MultiHead} = \mathrm{Concat}(\mathrm{head}_1,\dots,\mathrm{head}_H)\,W_O .$$
#
# In code, one $D\times D$ projection computes all heads at once; we then **split** the last
# axis into heads, attend, **merge** them back and apply the output projection:
#
# | step | shape |
# |---|---|
# | $x$ | $(B, T, D)$ |
# | $xW_Q$ | $(B, T, D)$ |
# | view as heads | $(B, T, H, d)$ |
# | transpose (split) | $(B, H, T, d)$ |
# | attend | $(B, H, T, d)$, weights $(B, H, T_q, T_k)$ |
# | transpose + reshape (merge) | $(B, T, H\cdot d) = (B, T, D)$ |
# | $\cdot W_O$ | $(B, T, D)$ |

# %%
class MyMultiHeadAttention(nn.Module):
    """Multi-head attention from scratch (Vaswani et al. 2017, §3.2.2)."""

    def __init__(self, D, H):
        super().__init__()
        self.H = H
        self.W_q, self.W_k, self.W_v, self.W_o = (nn.Linear(D, D) for _ in range(4))

    def forward(self, x, context=None, mask=None):
        context = x if context is None else context
        B, Tq, D = x.shape
        Tk, H, d = context.shape[1], self.H, D // self.H
        q = self.W_q(x).view(B, Tq, H, d).transpose(1, 2)          # (B, H, Tq, d)
        k = self.W_k(context).view(B, Tk, H, d).transpose(1, 2)    # (B, H, Tk, d)
        v = self.W_v(context).view(B, Tk, H, d).transpose(1, 2)    # (B, H, Tk, d)
        out, weights = my_attention(q, k, v, mask)                 # (B, H, Tq, d), (B, H, Tq, Tk)
        out = out.transpose(1, 2).reshape(B, Tq, D)                # merge heads: (B, Tq, H*d)
        return self.W_o(out), weights


x_demo = X[None]                                                   # (1, 10, 8)
print("x", tuple(x_demo.shape), "-> split_heads(x, 2)", tuple(A.split_heads(x_demo, 2).shape),
      "-> merge_heads", tuple(A.merge_heads(A.split_heads(x_demo, 2)).shape))


# %% [markdown]
# Now the reference: PyTorch's `nn.MultiheadAttention` keeps $W_Q, W_K, W_V$ stacked in one
# `in_proj_weight` of shape $(3D, D)$ and uses the opposite mask convention (True = *blocked*).
# We copy its weights into `course_lib.attention.MultiHeadAttention` (`load_from_torch`) and into
# our from-scratch module, and compare outputs and per-head weights, with a causal mask, with key
# padding, and in cross-attention:

# %%
def copy_into_mine(mine, ref):
    """nn.MultiheadAttention weights -> MyMultiHeadAttention (in_proj rows are [W_q; W_k; W_v])."""
    Dm = ref.embed_dim
    with torch.no_grad():
        for i, lin in enumerate((mine.W_q, mine.W_k, mine.W_v)):
            lin.weight.copy_(ref.in_proj_weight[i * Dm:(i + 1) * Dm])
            lin.bias.copy_(ref.in_proj_bias[i * Dm:(i + 1) * Dm])
        mine.W_o.weight.copy_(ref.out_proj.weight)
        mine.W_o.bias.copy_(ref.out_proj.bias)
    return mine


def mha_triplet(dtype, Dm=16, H=4):
    torch.manual_seed(SEED)
    ref = nn.MultiheadAttention(Dm, H, batch_first=True, dtype=dtype)
    nn.init.normal_(ref.in_proj_bias)                           # non-zero biases, so they are tested too
    nn.init.normal_(ref.out_proj.bias)
    lib = A.MultiHeadAttention(Dm, H).to(dtype).load_from_torch(ref)
    mine = copy_into_mine(MyMultiHeadAttention(Dm, H).to(dtype), ref)
    return ref, lib, mine


g = torch.Generator().manual_seed(3)
xs = {dt: torch.randn(2, 5, 16, generator=g, dtype=dt) for dt in (torch.float64, torch.float32)}
ctxs = {dt: torch.randn(2, 7, 16, generator=g, dtype=dt) for dt in (torch.float64, torch.float32)}
keep7 = torch.tensor([[True] * 7, [True] * 5 + [False] * 2])    # (B, Tk) True = real token


def mha_cases(dtype):
    """(name, torch output, torch weights, course_lib output+weights, mine output+weights) per case."""
    ref, lib, mine = mha_triplet(dtype)
    x, ctx = xs[dtype], ctxs[dtype]
    c5 = A.causal_mask(5)
    yield ("causal self-attention", *ref(x, x, x, attn_mask=~c5, average_attn_weights=False),
           lib(x, mask=c5, need_weights=True), lib(x, mask=c5), mine(x, mask=c5))
    pm = keep7[:, None, None, :]                                    # (B, 1, 1, Tk)
    yield ("cross-attention + key padding", *ref(x, ctx, ctx, key_padding_mask=~keep7, average_attn_weights=False),
           lib(x, ctx, mask=pm, need_weights=True), lib(x, ctx, mask=pm), mine(x, ctx, mask=pm))


with torch.no_grad():
    for dtype in (torch.float64, torch.float32):
        for name, ref_out, _, (lib_out, _), lib_fast, (my_out, _) in mha_cases(dtype):
            print(f"{str(dtype)[6:]:8s} {name:30s} |course_lib - torch| = {float((lib_out - ref_out).abs().max()):.1e}"
                  f"  fast path: {float((lib_fast - ref_out).abs().max()):.1e}"
                  f"  mine: {float((my_out - ref_out).abs().max()):.1e}")

# %%
# NBVAL_CHECK_OUTPUT
with torch.no_grad():
    for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 1e-5)):
        tag = str(dtype)[6:]
        for name, ref_out, ref_w, (lib_out, lib_w), lib_fast, (my_out, _) in mha_cases(dtype):
            check_close(f"course_lib MHA == nn.MultiheadAttention ({name}, {tag})", lib_out, ref_out, atol=tol, rtol=tol)
            check_close(f"course_lib MHA fast path == nn.MultiheadAttention ({name}, {tag})", lib_fast, ref_out,
                        atol=tol, rtol=tol)
            check_close(f"per-head weights == nn.MultiheadAttention ({name}, {tag})", lib_w, ref_w, atol=tol, rtol=tol)
            check_close(f"my MHA == nn.MultiheadAttention ({name}, {tag})", my_out, ref_out, atol=tol, rtol=tol);

# %% [markdown] tags=["slide"]
# ## 8. Attention has no idea of order — positional encodings
#
# Nothing in $\mathrm{softmax}(QK^\top/\sqrt{d_k})V$ refers to positions. Permute the input
# rows and the output rows are permuted the same way (*permutation equivariance*): "to be or not
# to be" and the same words shuffled produce the same set of output vectors. Demonstrated with a
# multi-head layer on our sentence:

# %%
torch.manual_seed(SEED)
mha8 = A.MultiHeadAttention(EMB_DIM, 2).eval()
perm = torch.randperm(T, generator=torch.Generator().manual_seed(4))
with torch.no_grad():
    out_plain = mha8(X[None])[0]                    # (T, D)
    out_shuffled = mha8(X[perm][None])[0]           # the shuffled sentence
print("shuffled sentence:", " ".join(tokens[i] for i in perm))
print("max |out(shuffled) - shuffled(out)| =", float((out_shuffled - out_plain[perm]).abs().max()))

# %% [markdown]
# The fix is to add position information to each token vector before the first layer.
#
# **Sinusoidal encodings** (Vaswani et al. 2017, §3.5):
# $PE_{t,2i} = \sin(t/10000^{2i/D})$, $PE_{t,2i+1} = \cos(t/10000^{2i/D})$ — each pair of
# dimensions is a clock at its own frequency. Because $\sin$ and $\cos$ of a shifted angle are
# linear in the unshifted ones, $PE_t \cdot PE_{t+k} = \sum_i \cos(\omega_i k)$, with the pair's
# frequency $\omega_i = 10000^{-2i/D}$, depends only on the offset $k$, not on $t$. **Learned encodings** (`A.LearnedPositions`, used by
# `course_lib.models.transformer`) are simply a trainable $(\text{max\_len}, D)$ table.

# %% tags=["slide-more"]
pe = A.sinusoidal_positions(64, 32)                              # (T=64, D=32)
offset = 5
dots = (pe[:-offset] * pe[offset:]).sum(-1)                      # PE_t · PE_{t+5} for every t
print(f"PE_t · PE_(t+{offset}) over t: min {float(dots.min()):.4f}, max {float(dots.max()):.4f}")
fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
im = axes[0].imshow(pe.T, aspect="auto", cmap="coolwarm")
axes[0].set(xlabel="position t", ylabel="dimension", title="sinusoidal positional encoding")
fig.colorbar(im, ax=axes[0])
sim = pe @ pe.T
axes[1].plot(sim[10], label="PE_10 · PE_t")
axes[1].plot(sim[40], label="PE_40 · PE_t")
axes[1].set(xlabel="position t", ylabel="dot product PE_s · PE_t", title="similarity depends on the distance only")
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()

X_pos = X + A.sinusoidal_positions(T, EMB_DIM)                   # words + positions
with torch.no_grad():
    out_pos = mha8(X_pos[None])[0]
    out_pos_shuffled = mha8((X[perm] + A.sinusoidal_positions(T, EMB_DIM))[None])[0]
print("with positions: max |out(shuffled) - shuffled(out)| =", float((out_pos_shuffled - out_pos[perm]).abs().max()))

# %%
# NBVAL_CHECK_OUTPUT
check_close("without positions attention is permutation-equivariant", out_shuffled, out_plain[perm], atol=1e-5)
check_close("PE_t . PE_(t+k) does not depend on t", dots, torch.full_like(dots, float(dots[0])), atol=1e-4)
check_true("with positions, shuffling the words changes the outputs",
           float((out_pos_shuffled - out_pos[perm]).abs().max()) > 1e-2);


# %% [markdown] tags=["slide"]
# ## 9. The cost: $O(T^2)$ memory, and what the time is made of
#
# The score matrix has $T_q \times T_k$ entries per head. The from-scratch path stores the whole
# $(B,H,T,T)$ weight tensor, so its memory grows exactly like $T^2$, and its two matrix products
# ($QK^\top$ and $AV$) do $2\cdot 2BHT^2d$ floating-point operations, also $\propto T^2$. PyTorch's fused
# `scaled_dot_product_attention` (FlashAttention-style kernels, Dao et al. 2022) does the same $O(T^2)$
# arithmetic but processes the scores in tiles without storing them, so its memory grows like $O(T)$.
# That is why the models in `course_lib` call `A.attend` (the fused path) and keep the from-scratch
# version for teaching and for returning weights.
#
# **Time is not a clean $T^2$.** A measured time adds three things: the arithmetic ($\propto T^2$), the
# traffic to and from memory (which depends on the sizes of the $T\times T$ tensors and the
# processor's caches they fit in) and a fixed cost per call (Python, dispatch, threads) that does not depend on $T$ at all. So
# we time the from-scratch path step by step — $QK^\top$, the softmax, $AV$ — next to a call with almost
# no work ($T=8$), and report the cost *per score*. Small sizes ($B=1$, $H=4$, $d=64$, forward pass,
# best of 15 calls):

# %% tags=["slide"]
def best_seconds(fn, *args, repeats=15):
    """Fastest of ``repeats`` calls fn(*args) after a warm-up: the least disturbed by other programs."""
    fn(*args)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return min(times)


Bt, Ht, dt_ = 1, 4, 64
lengths = [64, 128, 256, 512, 1024]
timing = {"from scratch": [], "SDPA (fused)": []}
steps = {"QKᵀ": [], "softmax": [], "AV": []}                      # the from-scratch path, step by step
weight_mib = []
gen = torch.Generator().manual_seed(SEED)
with torch.no_grad():
    q8, k8, v8 = (torch.randn(Bt, Ht, 8, dt_, generator=gen) for _ in range(3))
    fixed_s = best_seconds(A.scaled_dot_product_attention, q8, k8, v8)   # T = 8: almost no work
    for n in lengths:
        q, k, v = (torch.randn(Bt, Ht, n, dt_, generator=gen) for _ in range(3))
        s = q @ k.transpose(-2, -1) / math.sqrt(dt_)                # (B, H, T, T)
        w = s.softmax(-1)                                           # (B, H, T, T)
        timing["from scratch"].append(best_seconds(A.scaled_dot_product_attention, q, k, v))
        timing["SDPA (fused)"].append(best_seconds(A.attend, q, k, v))
        steps["QKᵀ"].append(best_seconds(lambda q, k: q @ k.transpose(-2, -1) / math.sqrt(dt_), q, k))
        steps["softmax"].append(best_seconds(torch.softmax, s, -1))
        steps["AV"].append(best_seconds(torch.matmul, w, v))
        weight_mib.append(A.scaled_dot_product_attention(q, k, v)[1].nbytes / 2**20)   # the stored (B,H,T,T)
scores_n = np.array([Bt * Ht * n * n for n in lengths])            # score entries per call
ns_per_score = np.array(timing["from scratch"]) / scores_n * 1e9
gflops = 4 * scores_n * dt_ / (np.array(steps["QKᵀ"]) + np.array(steps["AV"])) / 1e9
print(f"a call with T = 8 (almost no work): {fixed_s * 1e3:.3f} ms")
print(f"{'T':>5s} {'scratch ms':>10s} {'SDPA ms':>8s} | {'QKᵀ ms':>7s} {'softmax':>8s} {'AV ms':>7s} | "
      f"{'ns/score':>8s} {'GFLOP/s':>8s} | {'weights MiB':>11s}")
for i, n in enumerate(lengths):
    print(f"{n:5d} {timing['from scratch'][i] * 1e3:10.2f} {timing['SDPA (fused)'][i] * 1e3:8.2f} | "
          f"{steps['QKᵀ'][i] * 1e3:7.2f} {steps['softmax'][i] * 1e3:8.2f} {steps['AV'][i] * 1e3:7.2f} | "
          f"{ns_per_score[i]:8.2f} {gflops[i]:8.1f} | {weight_mib[i]:11.2f}")
mem_slope = np.polyfit(np.log(lengths), np.log(weight_mib), 1)[0]
slope = np.polyfit(np.log(lengths[2:]), np.log(timing["from scratch"][2:]), 1)[0]
print(f"memory of the stored weights grows like T^{mem_slope:.2f}; "
      f"from-scratch time like T^{slope:.2f} over T = {lengths[2]}..{lengths[-1]}")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
for name, ts in timing.items():
    axes[0].plot(lengths, np.array(ts) * 1e3, "o-", label=name)
axes[0].plot(lengths, timing["from scratch"][-1] * 1e3 * (np.array(lengths) / lengths[-1]) ** 2, "k:", label="∝ T²")
axes[0].axhline(fixed_s * 1e3, color="0.5", ls="--", lw=1, label="a call at T = 8")
axes[0].set(xscale="log", yscale="log", xlabel="sequence length T", ylabel="ms per call", title="time")
axes[1].plot(lengths, weight_mib, "o-", label="(B,H,T,T) weights, float32")
axes[1].set(xscale="log", yscale="log", xlabel="sequence length T", ylabel="MiB", title="memory stored by the scratch path")
for ax in axes:
    ax.set_xticks(lengths, [str(n) for n in lengths])
    ax.minorticks_off()
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()

# %%
i_64, i_128, i_512, i_1024 = (lengths.index(n) for n in (64, 128, 512, 1024))
call = np.array(timing["from scratch"])                               # seconds per from-scratch call
step_sum = sum(np.array(ts) for ts in steps.values())                # QKᵀ + softmax + AV, seconds
share_fixed = fixed_s / call[i_64]
predicted = share_fixed + (1 - share_fixed) * 4                      # fixed part + a part that grows like T²
step_at_1024 = {name: ts[i_1024] for name, ts in steps.items()}
slowest = max(step_at_1024, key=step_at_1024.get)
fused_ratio = np.array(timing["SDPA (fused)"]) / call
print(f"Memory is the clean signal: the stored weights grow like T^{mem_slope:.2f}, "
      f"{weight_mib[1] / weight_mib[0]:.1f}x per doubling of T.")
print(f"Fixed cost: a call with almost no work takes {share_fixed:.0%} of the from-scratch call at T = 64. If the rest "
      f"grew like T², doubling T to 128 would multiply the time by {share_fixed:.2f} + {1 - share_fixed:.2f} x 4 = "
      f"{predicted:.1f}; measured: {call[i_128] / call[i_64]:.1f}.")
rest_ms = (call[i_1024] - step_sum[i_1024]) * 1e3
print(f"What the three steps explain: at T = 1024 QKᵀ + softmax + AV, each timed on its own, take "
      f"{step_sum[i_1024] * 1e3:.2f} ms; the whole call {call[i_1024] * 1e3:.2f} ms ({step_sum[i_1024] / call[i_1024]:.0%}). "
      + (f"The other {rest_ms:.2f} ms is the work around them (scaling, the mask and shape checks, allocating outputs)."
         if rest_ms > 0 else "Timed one by one they take longer than the call itself: each separate call pays its "
         "own overhead and finds colder caches, so the sum overstates them."))
print("From T = 512 to 1024 (4x the scores): " + ", ".join(
      f"{name} x{ts[i_1024] / ts[i_512]:.1f}" for name, ts in steps.items())
      + f"; the whole call x{call[i_1024] / call[i_512]:.1f}.")
print(f"The largest step at T = 1024 is {slowest}: {step_at_1024[slowest] / step_sum[i_1024]:.0%} of the three steps, "
      f"{step_at_1024[slowest] / call[i_1024]:.0%} of the call. The products ran at {gflops.min():.0f} to "
      f"{gflops.max():.0f} GFLOP/s over these sizes.")
print(f"The fused path takes {np.median(fused_ratio):.2f} of the from-scratch time (median over T; from "
      f"{fused_ratio.min():.2f} to {fused_ratio.max():.2f}: single calls of a few ms are easily disturbed).")

# %% [markdown]
# Only the memory count is a clean $T^2$. A measured time is the arithmetic plus two things that do not follow
# $T^2$: a fixed cost per call (a large share at small $T$: compare the predicted and measured growth from 64 to
# 128 above) and the work the function does around its three steps (the share of the call they explain is
# printed above). The speed of the matrix products themselves also changes with the size of the tensors (the
# GFLOP/s range above), and on a shared machine every time moves from run to run. So an exponent fitted to a
# few small sizes need not be 2 and differs between runs: read the memory, and read time only where the
# arithmetic dominates. The fused path's advantage is that it never writes the $T\times T$ tensor: its memory
# is $O(T)$.

# %% [markdown]
# Larger sizes, batch sizes, the backward pass, peak memory, and CUDA when present come from the
# benchmark script (one command, it writes `benchmarks/results/attention_speed.json`). The cell below reads
# that **committed file**: its numbers were measured on the machine and with the threads it names, when the
# benchmark was run, not in this notebook's run.
#
# ```
# python benchmarks/attention_speed.py
# ```

# %% tags=["slide"]
results_file = Path("../benchmarks/results/attention_speed.json")
if results_file.exists():
    bench = json.loads(results_file.read_text())
    rows = bench["rows"]
    print(f"{results_file} (committed; measured by `{bench['command']}`, not in this run): {bench['machine']}, "
          f"torch {bench['torch']}, {bench['cpu_threads']} CPU thread(s), CUDA: {bench['cuda']}")
    cell = {(r["device"], r["path"], r["pass"], r["B"], r["T"]): r for r in rows}
    ms = lambda r: "-" if r is None or r["seconds"] is None else f"{r['seconds'] * 1e3:.1f}"      # noqa: E731
    mib = lambda r: "-" if r is None or r["peak_mib"] is None else f"{r['peak_mib']:.1f}"         # noqa: E731
    print("CPU, H=4, d=64; ms per call and peak extra MiB of the forward + backward pass")
    print(f"{'B':>3s} {'T':>5s} | {'scratch fwd':>11s} {'fused fwd':>9s} | {'scratch f+b':>11s} {'fused f+b':>9s} | "
          f"{'scratch MiB':>11s} {'fused MiB':>9s}")
    for B_, T_ in sorted({(r["B"], r["T"]) for r in rows if r["device"] == "cpu"}):
        got = {(path, kind): cell.get(("cpu", path, kind, B_, T_)) for path in ("scratch", "sdpa")
               for kind in ("fwd", "fwd+bwd")}
        print(f"{B_:3d} {T_:5d} | {ms(got['scratch', 'fwd']):>11s} {ms(got['sdpa', 'fwd']):>9s} | "
              f"{ms(got['scratch', 'fwd+bwd']):>11s} {ms(got['sdpa', 'fwd+bwd']):>9s} | "
              f"{mib(got['scratch', 'fwd+bwd']):>11s} {mib(got['sdpa', 'fwd+bwd']):>9s}")
    B1 = sorted((r["T"], r["peak_mib"]) for r in rows if r["device"] == "cpu" and r["B"] == min(r_["B"] for r_ in rows)
                and r["pass"] == "fwd+bwd" and r["path"] == "scratch" and r["peak_mib"] is not None)
    F1 = sorted((r["T"], r["peak_mib"]) for r in rows if r["device"] == "cpu" and r["B"] == min(r_["B"] for r_ in rows)
                and r["pass"] == "fwd+bwd" and r["path"] == "sdpa" and r["peak_mib"] is not None)
    for name, pts in (("from scratch", B1), ("fused", F1)):
        growth = [b / a for (_, a), (_, b) in zip(pts, pts[1:]) if a > 0]
        print(f"{name:12s}: peak memory grows {min(growth):.1f}x to {max(growth):.1f}x per doubling of T "
              f"(T = {pts[0][0]}..{pts[-1][0]})")
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    B_plot = min(r["B"] for r in rows)
    for i, (path, kind) in enumerate([(p, k) for p in ("scratch", "sdpa") for k in ("fwd", "fwd+bwd")]):
        sel = [r for r in rows if r["device"] == "cpu" and r["B"] == B_plot and r["path"] == path
               and r["pass"] == kind and r["seconds"] is not None]
        Ts = [r["T"] for r in sel]
        style = dict(color=f"C{i // 2}", ls="-" if kind == "fwd" else "--", marker="o", label=f"{path} {kind}")
        axes[0].plot(Ts, [r["seconds"] * 1e3 for r in sel], **style)
        if all(r["peak_mib"] is not None for r in sel):
            axes[1].plot(Ts, [max(r["peak_mib"], 0.01) for r in sel], **style)
    axes[0].set(xscale="log", yscale="log", xlabel="T", ylabel="ms per call", title=f"CPU time, B={B_plot}, H=4, d=64")
    axes[1].set(xscale="log", yscale="log", xlabel="T", ylabel="peak extra MiB", title="CPU peak memory (measured)")
    for ax in axes:
        ax.set_xticks(Ts, [str(n) for n in Ts])
        ax.minorticks_off()
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    plt.show()
else:
    print("no benchmark results yet; run: python benchmarks/attention_speed.py")

# %% [markdown]
# Measured peak memory tells the same story at larger sizes (the growth per doubling of $T$ is
# printed above): the from-scratch path holds scores and weights, and keeps them for the backward
# pass, so its peak grows like $T^2$; the fused path's grows about like its inputs and output,
# $O(T)$ — the reason `course_lib`'s models call `A.attend`.

# %% [markdown] tags=["slide"]
# ## 10. Learning to attend: a tiny Transformer learns to reverse a sequence
#
# Everything so far used untrained weights. Now we train. The task: read $T$ random symbols from a vocabulary
# $\{0,\dots,V-1\}$ and
# output them **reversed**, $y_t = x_{T-1-t}$. The answer at position $t$ is not at position $t$:
# information must be *routed* from position $T-1-t$. The model (`course_lib.chapters.attention`):
# token embedding + learned positions → pre-LN Transformer block(s) (`course_lib.models.transformer`)
# → a linear read-out at each position.
#
# **Honest baseline:** the *same* network with every attention layer replaced by a position-wise
# MLP of the same size. It knows the position and the token at that position, but cannot see
# other tokens — so for reversal it should be stuck at chance, $1/V$ (every symbol is equally likely). Both train with
# `course_lib.train.fit`, same steps, same optimiser.

# %%
from course_lib.chapters.attention import Config, RoutingTask, build_baseline, build_model

cfg = for_profile(Config, PROFILE)
print(cfg)
task = RoutingTask(cfg.data, cfg.train.seed)
example = task.batch(0)
print("input :", example["x"][0].tolist())
print("target:", example["y"][0].tolist())

# %%
seed_everything(cfg.train.seed)
model = build_model(cfg)
result = fit(model, task, cfg.train, device=DEVICE, run=RunOptions(desc="attention"))
seed_everything(cfg.train.seed)
baseline = build_baseline(cfg)
base_result = fit(baseline, task, cfg.train, device=DEVICE, run=RunOptions(desc="no attention"))
print("parameters: model", sum(p.numel() for p in model.parameters()),
      " baseline", sum(p.numel() for p in baseline.parameters()))
print("attention model :", result.final)
print("no-attention    :", base_result.final)
print(f"chance 1/V       : {1 / cfg.data.vocab_size:.4f}")
print(f"training: {result.wall_s:.1f} s + {base_result.wall_s:.1f} s")
record(accuracy=result.final["accuracy"], sequence_accuracy=result.final["sequence_accuracy"],
       baseline_accuracy=base_result.final["accuracy"])

# %% tags=["slide"]
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), gridspec_kw={"width_ratios": [2, 1]})
plot_history(result.history, ax=axes[0], title="training loss (cross-entropy per symbol)")
hist_base = base_result.history["train"]
axes[0].plot([r["step"] for r in hist_base], [r["loss"] for r in hist_base], color="C3", alpha=0.6,
             label="no-attention baseline")
axes[0].axhline(math.log(cfg.data.vocab_size), color="k", ls=":", lw=1, label=f"chance ln V = {math.log(cfg.data.vocab_size):.2f}")
axes[0].legend(fontsize=8)
names = ["attention", "no attention\n(position-wise MLP)", "chance 1/V"]
accs = [result.final["accuracy"], base_result.final["accuracy"], 1 / cfg.data.vocab_size]
axes[1].bar(names, accs, color=["C0", "C3", "0.6"])
for i, a in enumerate(accs):
    axes[1].text(i, a + 0.02, f"{a:.3f}", ha="center")
axes[1].set(ylim=(0, 1.1), xlabel="model", ylabel="held-out accuracy per symbol", title=f"reversal, T={cfg.data.seq_len}, V={cfg.data.vocab_size}")
fig.tight_layout()
plt.show()

# %% [markdown]
# The chapter's main result, checked (these lines are compared by the test suite, in every profile):

# %%
# NBVAL_CHECK_OUTPUT
chance = 1 / cfg.data.vocab_size
acc, acc_base = result.final["accuracy"], base_result.final["accuracy"]
check_true("the attention model reverses held-out sequences (accuracy >= 0.9)", acc >= 0.9)
check_true("attention beats the no-attention baseline by at least 0.5", acc - acc_base >= 0.5)
check_true("the no-attention baseline stays within 0.02 of chance 1/V: it cannot see other positions",
           abs(acc_base - chance) <= 0.02);

# %% [markdown]
# What did it learn to attend to? `attention_maps` re-runs the encoder through the from-scratch
# path and returns the weights of every layer and head, for one held-out sequence:

# %% tags=["slide"]
model.eval()
x_eval = task.eval_set["x"][:1]
maps = model.encoder.attention_maps(x_eval.to(DEVICE))           # list over layers of (1, H, T, T)
labels = [str(s) for s in x_eval[0].tolist()]
n_layers, n_heads = len(maps), maps[0].shape[1]
fig, axes = plt.subplots(n_layers, n_heads, figsize=(5.2 * n_heads, 4.6 * n_layers), squeeze=False)
anti = torch.arange(cfg.data.seq_len).flip(0)                    # key T-1-t for query t
for l, w in enumerate(maps):
    w = w.cpu()
    for h in range(n_heads):
        mass = float(w[0, h, torch.arange(cfg.data.seq_len), anti].mean())
        print(f"layer {l} head {h}: mean weight on the anti-diagonal (key T-1-t) = {mass:.3f}")
        heatmap(w[0, h], labels, labels, ax=axes[l][h], annotate=False,
                title=f"layer {l}, head {h}: anti-diagonal mass {mass:.2f}")
        axes[l][h].set(xlabel="key position (input symbol)", ylabel="query position (output)")
plt.show()


# %% [markdown]
# The anti-diagonal is the algorithm: query $t$ puts its weight on key $T-1-t$ and copies that
# symbol's value. The model found it from the loss alone — and it could only do so because the
# learned positional encodings tell each query *where* it is and each key where *it* is. The
# position-wise baseline, which has about the same number of parameters (printed above) but cannot
# move information between positions, stays at chance (checked above).

# %% [markdown] tags=["slide"]
# ## 11. Explore: pick a query, change the temperature, toggle the mask
#
# Attention over Hamlet's line with $Q=K=V=X$ (section 2a). The *temperature* $\tau$ divides the
# scaled scores, $\mathrm{softmax}(QK^\top/(\sqrt{d}\,\tau))$: small $\tau$ sharpens the weights
# toward one-hot (what happens without the $\sqrt{d_k}$), large $\tau$ flattens them toward
# uniform. A static figure is drawn first; in JupyterLab the controls below it update it.

# %% tags=["slide-more"]
def draw_attention(query=3, temperature=1.0, causal=False):
    mask = A.causal_mask(T) if causal else None
    _, w = A.scaled_dot_product_attention(X[None], X[None], X[None], mask,
                                          scale=1.0 / (math.sqrt(EMB_DIM) * temperature))
    w = w[0]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [1.2, 1]})
    heatmap(w, tokens, tokens, ax=axes[0], title=f"weights, τ = {temperature:.2g}" + (", causal" if causal else ""))
    axes[0].set(xlabel="key word j", ylabel="query word i")
    axes[0].add_patch(plt.Rectangle((-0.5, query - 0.5), T, 1, fill=False, ec="red", lw=2))
    axes[1].bar(range(T), w[query], color="C1")
    axes[1].set_xticks(range(T), tokens, rotation=60)
    axes[1].set(ylim=(0, 1), xlabel="key word j", ylabel="weight", title=f"query {query}: {tokens[query]!r}")
    fig.tight_layout()


explorer = explore(
    draw_attention,
    query=widgets.Dropdown(options=[(f"{i}: {w}", i) for i, w in enumerate(tokens)], value=3, description="query"),
    temperature=widgets.FloatLogSlider(value=1.0, base=10, min=-1, max=1, step=0.05, description="τ"),
    causal=widgets.Checkbox(value=False, description="causal mask"),
)

# %% [markdown] tags=["slide"]
# ## 12. Common mistakes, shown failing and then fixed
#
# ### 12a. Weights that do not depend on the query
# A formula seen in tutorials: $a_j = \dfrac{e_j\cdot e_j}{\sum_k e_k\cdot e_k}$. It scores each
# key *against itself*, so every query gets the same row — it is not attention at all. Using the
# keys $K$ of section 2b:

# %% tags=["slide-more"]
self_scores = (K * K).sum(-1)                                   # e_j · e_j            (T,)
wrong_w = (self_scores / self_scores.sum()).expand(T, T)        # the same row for every query
right_w = weights1                                              # softmax(Q Kᵀ/√d_k)   (T, T)
print("wrong: largest difference between any two query rows:", float((wrong_w - wrong_w[0]).abs().max()))
print("right: largest difference between any two query rows:", float((right_w - right_w[0]).abs().max()))
fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
heatmap(wrong_w, tokens, tokens, ax=axes[0], title="WRONG  e_j·e_j / Σ e_k·e_k: identical rows")
heatmap(right_w, tokens, tokens, ax=axes[1], title="RIGHT  softmax(q_i·k_j/√d_k): one row per query")
for ax in axes:
    ax.set(xlabel="key word j", ylabel="query word i")
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
check_true("fixed: different queries get different weights", float((right_w - right_w[0]).abs().max()) > 1e-3)
check_close("fixed: weights are softmax(QK^T/sqrt(d_k))", right_w,
            A.scaled_dot_product_attention(Q[None], K[None], V[None])[1][0]);


# %% [markdown]
# **What it costs a network.** The reversal task of section 10 needs exactly what this formula
# cannot do: query $t$ must look at key $T-1-t$, a different key for every query. We swap the
# attention layers of the section-10 model for the formula — per head, weights
# $a_j = k_j\cdot k_j / \sum_{j'} k_{j'}\cdot k_{j'}$, the same for every query, then the weighted
# average of the values and the output projection — and train it exactly like the real model
# (same data, steps and optimiser), next to real attention, on three seeds each:

# %%
class QueryIndependentAttention(nn.Module):
    """The formula as a layer: per head a_j = k_j·k_j / Σ_j' k_j'·k_j', the same row for every query."""

    def __init__(self, D, H):
        super().__init__()
        self.H = H
        self.k_proj, self.v_proj, self.out_proj = (nn.Linear(D, D) for _ in range(3))

    def forward(self, x, context=None, mask=None, need_weights=False, *, is_causal=False):
        B, T_, _ = x.shape
        k = A.split_heads(self.k_proj(x), self.H)                         # (B, H, T, d)
        v = A.split_heads(self.v_proj(x), self.H)                         # (B, H, T, d)
        s = (k * k).sum(-1)                                               # (B, H, T): e_j · e_j
        w = (s / s.sum(-1, keepdim=True))[:, :, None, :].expand(-1, -1, T_, -1)   # (B, H, T, T), equal rows
        out = self.out_proj(A.merge_heads(w @ v))                         # (B, T, D)
        return (out, w) if need_weights else out


def train_reversal(seed, query_independent):
    """Held-out metrics of section 10's model (or its query-independent variant), trained as there with `seed`."""
    cfg_s = override(cfg, {"train.seed": seed})
    seed_everything(seed)
    net = build_model(cfg_s)
    if query_independent:
        for block in net.encoder.blocks:
            block.attn = QueryIndependentAttention(cfg.model.d_model, cfg.model.n_heads)
    return fit(net, RoutingTask(cfg_s.data, seed), cfg_s.train, device=DEVICE, run=QUIET).final


seeds = [cfg.train.seed + i for i in range(3)]
t0 = time.perf_counter()
runs = {"real attention": [result.final] + [train_reversal(s, False) for s in seeds[1:]],   # seeds[0]: section 10
        "query-independent weights": [train_reversal(s, True) for s in seeds]}
acc_attention, acc_query_free = ([r["accuracy"] for r in runs[k]] for k in runs)
for name, finals in runs.items():
    accs_, seqs_ = [r["accuracy"] for r in finals], [r["sequence_accuracy"] for r in finals]
    print(f"{name:26s}: accuracy per symbol {np.mean(accs_):.3f} ± {np.std(accs_):.3f}, whole sequences right "
          f"{np.mean(seqs_):.1%}  (seeds {seeds}: {', '.join(f'{a:.3f}' for a in accs_)})")
print(f"chance 1/V = {1 / cfg.data.vocab_size:.3f}; training took {time.perf_counter() - t0:.0f} s")
print(f"Query-independent weights reach {np.mean(acc_query_free) / (1 / cfg.data.vocab_size):.1f}x chance per symbol, "
      f"{np.mean(acc_attention) - np.mean(acc_query_free):.2f} below real attention with the same training.")

# %%
# NBVAL_CHECK_OUTPUT
check_true("real attention learns reversal on every seed (accuracy >= 0.9)", min(acc_attention) >= 0.9)
check_true("query-independent weights stay at least 0.5 below real attention on every seed",
           max(acc_query_free) <= min(acc_attention) - 0.5);

# %% [markdown]
# ### 12b. No scaling
# Forgetting $1/\sqrt{d_k}$ works for tiny heads and silently breaks large ones. With
# $d_k = 512$ (measured with `saturation` from section 4):

# %%
for scaled in (False, True):
    top, onehot, grad = saturation(512, scaled)
    print(f"{'fixed  (÷√d_k)' if scaled else 'broken (no ÷√d_k)'}: mean max weight {top:.3f}, "
          f"{onehot:.0%} of rows one-hot, median |∂L/∂s| {grad:.2e}")

# %%
# NBVAL_CHECK_OUTPUT
check_true("fixed: scaled scores leave the softmax unsaturated (< 5% one-hot rows)", saturation(512, True)[1] < 0.05);

# %% [markdown]
# ### 12c. Softmax over the queries instead of the keys
# `softmax(scores, dim=-2)` (or `dim=0` on a $(T_q, T_k)$ matrix) normalises each *column*: each
# key distributes itself over the queries. Rows no longer sum to 1, so an output is no longer an
# average of values.

# %%
wrong_axis = torch.softmax(scores1, dim=-2)                     # over queries
print("wrong: row sums   ", wrong_axis.sum(-1))
print("wrong: column sums", wrong_axis.sum(-2))
fixed_axis = torch.softmax(scores1, dim=-1)                     # over keys
print("fixed: row sums   ", fixed_axis.sum(-1))

# %%
# NBVAL_CHECK_OUTPUT
check_close("fixed: softmax over keys, every row sums to 1", fixed_axis.sum(-1), torch.ones(T));


# %% [markdown]
# ### 12d. Masking after the softmax
# Zeroing the forbidden weights *after* the softmax leaves rows that sum to less than 1 — and,
# worse, the normaliser $\sum_j e^{s_j}$ still contains the future keys, so the future leaks into
# the past: change a future word and earlier outputs change.

# %%
def masked_after(x):
    s = x @ x.T / math.sqrt(EMB_DIM)
    w = torch.softmax(s, dim=-1) * causal                      # WRONG: mask after the softmax
    return w @ x, w


def masked_before(x):
    s = (x @ x.T / math.sqrt(EMB_DIM)).masked_fill(~causal, float("-inf"))   # fixed: before
    w = torch.softmax(s, dim=-1)
    return w @ x, w


out_wrong, w_wrong = masked_after(X)
print("wrong: row sums", w_wrong.sum(-1))
leak = float((masked_after(X_future)[0][:6] - out_wrong[:6]).abs().max())
print(f"wrong: changing words 6..9 changes outputs 0..5 by up to {leak:.3f}  <- the future leaks")
out_fixed, w_fixed = masked_before(X)
print("fixed: row sums", w_fixed.sum(-1))
print("fixed: change in outputs 0..5:", float((masked_before(X_future)[0][:6] - out_fixed[:6]).abs().max()))

# %%
# NBVAL_CHECK_OUTPUT
check_close("fixed: masked rows still sum to 1", w_fixed.sum(-1), torch.ones(T))
check_close("fixed: future words do not change earlier outputs", masked_before(X_future)[0][:6], out_fixed[:6]);

# %% [markdown]
# ### 12e. A walk-through with invented weights
# Worked examples sometimes write the softmax weights down by hand instead of computing them, and
# the shapes with them. A typical one: three words ($T=3$, $d_k=d_v=2$) with
#
# $$Q = K = \begin{pmatrix}1&0\\0&1\\1&1\end{pmatrix},\qquad V = \begin{pmatrix}1&2\\3&4\\5&6\end{pmatrix},$$
#
# and the text "$QK^\top$ is a $2\times 2$ matrix; after the softmax the first word's weights are
# $(0.5, 0.2, 0.3)$; the output is $3\times 3$". Computed:

# %%
Q_ex = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])     # (T=3, d_k=2)
K_ex = Q_ex.clone()                                            # (3, 2)
V_ex = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])      # (T=3, d_v=2)
invented_w0 = torch.tensor([0.5, 0.2, 0.3])                    # the hand-written first row
S_ex = Q_ex @ K_ex.T / math.sqrt(2)                            # (T, T) = (3, 3), not (d_k, d_k)
W_ex = torch.softmax(S_ex, dim=-1)                             # (3, 3)
O_ex = W_ex @ V_ex                                             # (T, d_v) = (3, 2), not (3, 3)
print("shapes: scores", tuple(S_ex.shape), " weights", tuple(W_ex.shape), " output", tuple(O_ex.shape))
print("word 0: scores  ", S_ex[0])
print("word 0: weights ", W_ex[0], "  invented:", invented_w0)
print("word 0: output  ", O_ex[0], "  with the invented weights:", invented_w0 @ V_ex)
print(f"the invented weights are off by up to {float((invented_w0 - W_ex[0]).abs().max()):.3f}, "
      f"the output by up to {float((invented_w0 @ V_ex - O_ex[0]).abs().max()):.3f}")

# %% [markdown]
# Word 0's query $(1, 0)$ has the same dot product with keys 0 and 2, so the softmax must give
# them the same weight; the invented row does not, and no scores could produce it for these keys.
# The shapes follow from the table of section 3: scores are $T_q\times T_k$, outputs
# $T_q \times d_v$.

# %%
# NBVAL_CHECK_OUTPUT
check_true("scores are (T, T) = (3, 3), the output (T, d_v) = (3, 2)",
           tuple(S_ex.shape) == (3, 3) and tuple(O_ex.shape) == (3, 2))
check_close("equal scores get equal weights (word 0, keys 0 and 2)", W_ex[0, 0], W_ex[0, 2])
check_close("the computed weights equal course_lib's attention", W_ex,
            A.scaled_dot_product_attention(Q_ex[None], K_ex[None], V_ex[None])[1][0])
check_true("the invented weights differ from the softmax by more than 0.05",
           float((invented_w0 - W_ex[0]).abs().max()) > 0.05);

# %% [markdown] tags=["slide"]
# ## 13. Exercises
#
# Write the function body, run the cell, read the checker's verdict. Each checker tests your
# function on fixed inputs against a reference and names the usual mistakes.
#
# **Exercise 1 — a numerically stable softmax.** `torch.exp(1000.)` is `inf`. Use
# $\mathrm{softmax}(x) = \mathrm{softmax}(x - c)$ for any constant $c$, with $c = \max x$ along
# `dim`.

# %% nbgrader={"grade": false, "grade_id": "01_attention-stable_softmax", "locked": false, "schema_version": 3, "solution": true, "task": false}
from course_lib.exercises.attention import check_causal_padding_mask, check_grouped_query_attention, check_stable_softmax


def stable_softmax(x, dim=-1):
    """softmax of x along dim, without overflow for large x."""
    ### BEGIN SOLUTION
    z = x - x.max(dim=dim, keepdim=True).values
    e = z.exp()
    return e / e.sum(dim=dim, keepdim=True)
    ### END SOLUTION


check_stable_softmax(stable_softmax);


# %% [markdown]
# **Exercise 2 — one mask for a padded batch of a language model.** A causal language model
# trained on padded sequences needs both masks of section 5 at once: query $i$ may attend to key
# $j$ only if $j \le i$ **and** token $j$ is not padding. Write `causal_padding_mask(ids, pad_id)`
# for token ids of shape $(B, T)$, returning a bool tensor of shape $(B, 1, T, T)$ (True = may
# attend; the 1 broadcasts over heads). Before running the checker, work out on paper which rows
# are all False for a *left*-padded sequence such as `[PAD, PAD, 3, 4]` (section 5's fully-masked
# row).

# %% nbgrader={"grade": false, "grade_id": "01_attention-causal_padding_mask", "locked": false, "schema_version": 3, "solution": true, "task": false}
def causal_padding_mask(ids, pad_id):
    """ids (B, T) -> bool (B, 1, T, T): True where key j <= query i and ids[b, j] != pad_id."""
    ### BEGIN SOLUTION
    T_ = ids.shape[1]
    causal = torch.ones(T_, T_, dtype=torch.bool).tril()           # (T, T)
    real_keys = (ids != pad_id)[:, None, None, :]                  # (B, 1, 1, T)
    return causal & real_keys                                      # (B, 1, T, T)
    ### END SOLUTION


check_causal_padding_mask(causal_padding_mask);


# %% [markdown]
# **Exercise 3 — grouped-query attention.** A model that generates text keeps the keys and values
# of every past position (the *KV cache*): $2\cdot B\cdot H\cdot T\cdot d$ numbers per layer.
# Grouped-query attention (Ainslie et al., 2023) keeps only $G$ key/value heads, $G$ dividing $H$,
# and lets each group of $H/G$ consecutive query heads share one: query head $h$ uses key/value
# head $\lfloor h/(H/G) \rfloor$, so the cache is $H/G$ times smaller ($G=1$ is multi-query attention,
# Shazeer 2019; $G=H$ is the multi-head attention of section 7). Write
# `grouped_query_attention(q, k, v)` for q $(B,H,T,d)$ and k, v $(B,G,T,d)$, returning the
# $(B,H,T,d)$ outputs of $\mathrm{softmax}(qk^\top/\sqrt d)\,v$ with the shared heads (no mask).

# %% nbgrader={"grade": false, "grade_id": "01_attention-grouped_query_attention", "locked": false, "schema_version": 3, "solution": true, "task": false}
def grouped_query_attention(q, k, v):
    """q (B, H, T, d), k and v (B, G, T, d) -> (B, H, T, d); query head h uses key/value head h // (H/G)."""
    ### BEGIN SOLUTION
    r = q.shape[1] // k.shape[1]                                   # query heads per key/value head
    k, v = k.repeat_interleave(r, dim=1), v.repeat_interleave(r, dim=1)   # (B, H, T, d)
    weights = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(dim=-1)   # (B, H, T, T)
    return weights @ v                                             # (B, H, T, d)
    ### END SOLUTION


check_grouped_query_attention(grouped_query_attention);

# %% [markdown] tags=["slide"]
# ## 14. Summary
#
# * Attention = similarity (dot product of a query with every key) → softmax **over the keys** →
#   weighted average of the values: $\mathrm{softmax}(QK^\top/\sqrt{d_k})V$, shapes
#   $(T_q,d_k),(T_k,d_k),(T_k,d_v) \to (T_q,d_v)$.
# * $Q,K,V$ are learned projections, so a word can look for something other than itself; their random
#   starting scale is a choice ($\mathcal{N}(0,1/D)$ here, uniform of variance $1/(3D)$ in `nn.Linear`).
# * $\mathrm{Var}(q\cdot k) = d_k$; dividing by $\sqrt{d_k}$ keeps the softmax out of saturation,
#   where its gradient vanishes (measured above).
# * Masks go on the scores, before the softmax: padding $(B,1,1,T)$, causal $(T,T)$.
#   Masking afterwards leaks the future.
# * Cross-attention is the same formula with queries from one sequence and keys/values from another.
# * Multi-head attention = split into $H$ heads, attend, merge, output projection; ours equals
#   `torch.nn.MultiheadAttention` to float64 precision.
# * Without positional encodings attention is permutation-equivariant.
# * The from-scratch path stores $O(T^2)$ memory exactly; its time is $T^2$ arithmetic plus a fixed cost
#   per call and memory traffic, so a measured exponent is not 2. The fused SDPA kernel avoids the
#   $O(T^2)$ memory, so course models use `course_lib.attention.attend`.
# * A tiny Transformer learns to reverse sequences (anti-diagonal attention); the same network
#   without attention cannot beat chance, and with query-independent weights it cannot learn it either.
# * Weights written down by hand in a walk-through must still be a softmax of the scores: compute them.
#
# Next: notebook 02 trains a bidirectional Transformer encoder (`TransformerEncoder`) as a masked
# language model on the plays.
#
# ## Further reading
# * D. Bahdanau, K. Cho, Y. Bengio (2015). *Neural Machine Translation by Jointly Learning to Align and Translate.* ICLR — attention as soft alignment.
# * A. Vaswani et al. (2017). *Attention Is All You Need.* NeurIPS — scaled dot-product and multi-head attention, sinusoidal positions.
# * O. Levy, Y. Goldberg (2014). *Neural Word Embedding as Implicit Matrix Factorization.* NeurIPS — why PPMI + SVD gives word vectors.
# * R. Xiong et al. (2020). *On Layer Normalization in the Transformer Architecture.* ICML — the pre-LN block used here.
# * T. Dao et al. (2022). *FlashAttention: Fast and Memory-Efficient Exact Attention with IO-Awareness.* NeurIPS — the fused kernel idea.
# * N. Shazeer (2019). *Fast Transformer Decoding: One Write-Head is All You Need.* arXiv:1911.02150 — multi-query attention.
# * J. Ainslie et al. (2023). *GQA: Training Generalized Multi-Query Transformer Models from Multi-Head Checkpoints.* EMNLP — grouped-query attention.
# * P. Shaw, J. Uszkoreit, A. Vaswani (2018). *Self-Attention with Relative Position Representations.* NAACL — positions as offsets.
