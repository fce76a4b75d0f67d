"""Notebook 02's question: does masked-LM pre-training help when labels are few?

Two tasks (:mod:`.data`): verse or prose, and kept or shuffled word order. At several label
budgets: (a) the pre-trained encoder fine-tuned, its head first fitted as a linear probe
("LP-FT", Kumar et al. 2022), (b) the same architecture from scratch, (c) a linear probe
on frozen pre-trained features, (d) TF-IDF logistic regression; for word order also
(e) logistic regression on the pre-trained MLM's own pseudo-log-likelihood (Salazar et
al. 2020) and (f) on a token-bigram model's log-likelihood, counted on the same
unlabelled plays. Each budget is drawn half of each class, nested across budgets for one
draw (:func:`course_lib.data.budgets.budget_indices`), and averaged over
``cfg.study.ft_repeats`` runs (run r: label draw r, fine-tuning seed r and, in notebook 02,
pre-training seed r).
"""

from __future__ import annotations

from typing import Any
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ... import metrics, runtime
from ...batching import map_batches, random_rows
from ...data.budgets import budget_indices
from ...data.text import MASK, N_SPECIAL, PAD
from ...models.mlm import MaskedLM, SequenceClassifier, pool_hidden
from ...models.ngram import NGramLM
from ...train import RunOptions, Task, TrainConfig, fit
from .config import Config, model_config
from .data import Labelled, MLMData

__all__ = ["METHODS", "ORDER_METHODS", "TASKS", "ClassifyTask", "finetune", "features", "label_budget",
           "probe_at_budget", "frozen_probe", "bow_baseline", "pseudo_log_likelihood", "score_features",
           "token_bigram", "bigram_log_likelihood", "compare_label_budgets"]

METHODS = ("pretrained_finetuned", "scratch", "frozen_probe", "bow_tfidf")
ORDER_METHODS = (*METHODS, "mlm_score", "bigram_score")   # the word-order task adds the two likelihood scorers
TASKS = ("verse_prose", "word_order")


def _trim(ids: torch.Tensor) -> torch.Tensor:
    """ids (B, T) -> (B, T'): without the trailing columns that are padding in every row (masked anyway)."""
    return ids[:, : max(int((ids != PAD).sum(1).max()), 1)]


class ClassifyTask(Task):
    """Random labelled speeches (with replacement) -> cross-entropy; evaluates test accuracy."""

    def __init__(self, train: Labelled, test: Labelled, batch_size: int, seed: int = 0):
        if len(train.labels) < 2 or len(torch.unique(train.labels)) < 2:
            raise ValueError("fine-tuning needs at least two labelled examples of two classes")
        self.train, self.test, self.batch_size, self.seed = train, test, batch_size, seed

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        idx = random_rows(len(self.train.labels), self.batch_size, self.seed, step)
        return {"ids": _trim(self.train.ids[idx]), "y": self.train.labels[idx]}   # (B, T'), (B,)

    def loss(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        ids = batch["ids"]
        return F.cross_entropy(model(ids, ids != PAD).float(), batch["y"])   # logits (B, C)

    def evaluate(self, model: nn.Module, step: int) -> dict[str, float]:
        def predict(x: torch.Tensor) -> torch.Tensor:              # (B, T) -> (B,) class ids
            x = _trim(x)
            return model(x, x != PAD).argmax(-1)
        preds = map_batches(model, predict, self.test.ids)         # (N,)
        return {"accuracy": metrics.accuracy(preds, self.test.labels)}

    def signature(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "examples": len(self.train.labels)}


def finetune(encoder_state: Mapping[str, torch.Tensor] | None, cfg: Config, train: Labelled, test: Labelled,
             device: str | torch.device | None = None, seed: int = 0, progress: bool = False) -> float:
    """Test accuracy of a classifier (pooled with ``cfg.study.ft_pool``) trained on ``train``; from scratch if no state.

    With a pre-trained encoder the head is first fitted as a linear probe on the frozen features, then
    everything is fine-tuned at the gentle ``ft_lr`` (LP-FT: a random head's large early gradients
    would distort the pre-trained features, which hurts most with few labels). From scratch uses the
    pre-training ``cfg.train.lr``: a fair chance to learn from nothing.
    """
    s = cfg.study
    runtime.seed_everything(seed)
    model = MaskedLM(model_config(cfg))
    if encoder_state is not None:
        model.load_state_dict(encoder_state)
    clf = SequenceClassifier(model.encoder, n_classes=2, pool=s.ft_pool, dropout=0.1)
    if encoder_state is not None and s.ft_probe_init:
        _probe_init(clf, train, s.ft_pool)
    lr = s.ft_lr if encoder_state is not None else cfg.train.lr
    tc = TrainConfig(steps=s.ft_steps, lr=lr, warmup_steps=s.ft_steps // 10, weight_decay=0.01, seed=seed)
    result = fit(clf, ClassifyTask(train, test, s.ft_batch, seed), tc, device=device,
                 run=RunOptions(progress=progress, desc="fine-tune" if encoder_state is not None else "from scratch"))
    return result.final["accuracy"]


def _probe_init(clf: SequenceClassifier, train: Labelled, pool: str) -> None:
    """Set the 2-class head to a logistic regression fitted on the frozen pooled features."""
    from sklearn.linear_model import LogisticRegression

    x = features(clf.encoder, train.ids, pool).double().numpy()
    lr = LogisticRegression(C=1.0, max_iter=2000).fit(x, train.labels.numpy())
    w = torch.as_tensor(lr.coef_[0], dtype=clf.classifier.weight.dtype)
    with torch.no_grad():                           # logits (0, w.x + b): softmax = the fitted sigmoid
        clf.classifier.weight.zero_()
        clf.classifier.bias.zero_()
        clf.classifier.weight[1] = w
        clf.classifier.bias[1] = float(lr.intercept_[0])


def features(encoder: nn.Module, ids: torch.Tensor, pool: str = "mean") -> torch.Tensor:
    """Frozen pooled encoder features (N, D) on CPU for ids (N, T)."""
    return map_batches(encoder, lambda x: pool_hidden(encoder(x, x != PAD), x != PAD, pool), ids)


def label_budget(labels: torch.Tensor, budget: int, repeat: int, seed: int = 0) -> torch.Tensor:
    """``budget`` training indices, half of each class; nested across budgets for one ``repeat``."""
    return budget_indices(labels, budget // 2, torch.Generator().manual_seed(seed * 7919 + repeat))


def probe_at_budget(encoder: nn.Module, data: MLMData, cfg: Config, budget: int, repeat: int = 0) -> float:
    """Verse/prose linear-probe accuracy of frozen ``encoder`` features with ``budget`` labels."""
    train, test, pool = data.train_labelled, data.test_labelled, cfg.study.probe_pool
    idx = label_budget(train.labels, budget, repeat, cfg.train.seed)
    return frozen_probe(features(encoder, train.ids[idx], pool), train.labels[idx],
                        features(encoder, test.ids, pool), test.labels)


def frozen_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor) -> float:
    """Logistic regression on frozen features (:func:`course_lib.metrics.linear_probe`)."""
    return metrics.linear_probe(train_x, train_y, test_x, test_y, C=1.0, max_iter=2000)


def bow_baseline(train_texts: Sequence[str], train_y: torch.Tensor, test_texts: Sequence[str], test_y: torch.Tensor
                 ) -> float:
    """TF-IDF (sublinear tf) + logistic regression (C=10): the honest no-deep-learning baseline."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(sublinear_tf=True)
    clf = LogisticRegression(C=10.0, max_iter=2000).fit(vec.fit_transform(train_texts), train_y.numpy())
    return float(clf.score(vec.transform(test_texts), test_y.numpy()))


def pseudo_log_likelihood(model: MaskedLM, ids: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """log p(x_t | x with x_t replaced by [MASK]) at every real token of ids (N, T); 0 elsewhere -> (N, T) float32.

    Salazar et al. (2020): PLL(x) = sum_t log p(x_t | x_\\t), one forward pass per masked position
    (the head runs only at that position).
    """
    def rows(x: torch.Tensor) -> torch.Tensor:                       # (B, T) on the model's device
        real, out = x >= N_SPECIAL, torch.zeros(x.shape, device=x.device)
        for t in torch.nonzero(real.any(0)).flatten().tolist():
            has = real[:, t]                                         # (B,): the rows with a real token at t
            xs = _trim(x[has])                                       # (n, T')
            at = torch.zeros_like(xs, dtype=torch.bool)
            at[:, t] = True
            logits = model(xs.masked_fill(at, MASK), xs != PAD, positions=at).float()   # (n, V)
            out[has, t] = logits.log_softmax(-1).gather(1, xs[:, t:t + 1])[:, 0]
        return out
    return map_batches(model, rows, ids, batch_size)


def score_features(log_probs: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
    """Per-text mean log-probability over the ``scored`` (N, T) bool positions -> (N, 1) float32 (a length-free PLL)."""
    lp = log_probs.float().masked_fill(~scored, 0.0)
    return (lp.sum(1) / scored.sum(1).clamp(min=1))[:, None]


def token_bigram(train_seqs: torch.Tensor, vocab_size: int, k: float = 0.1) -> NGramLM:
    """A token-bigram model counted on the unlabelled pre-training rows (padding removed): self-supervised counting."""
    return NGramLM(2, vocab_size, k).fit(train_seqs[train_seqs != PAD])


def bigram_log_likelihood(lm: NGramLM, ids: torch.Tensor) -> torch.Tensor:
    """log P(x_t | x_{t-1}) at every real token of ids (N, T) (the first is read after [CLS]); 0 elsewhere."""
    out = torch.zeros(ids.shape)
    for i, row in enumerate(ids):
        n = int((row != PAD).sum())
        out[i, 1:n] = lm.log_probs(row[:n]).float()                    # row[0] is [CLS]: the first context
    return out * (ids >= N_SPECIAL)


def _task(data: MLMData, cfg: Config, task: str) -> tuple[Labelled, Labelled, tuple[int, ...], tuple[str, ...]]:
    if task == "verse_prose":
        return data.train_labelled, data.test_labelled, cfg.study.ft_budgets, METHODS
    if task == "word_order":
        return data.order_train, data.order_test, cfg.study.order_budgets, ORDER_METHODS
    raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")


def compare_label_budgets(pretrained: MaskedLM | Sequence[MaskedLM], data: MLMData, cfg: Config,
                          device: str | torch.device | None = None, progress: bool = True,
                          methods: Sequence[str] | None = None, task: str = "verse_prose") -> dict[str, Any]:
    """Accuracy of each method at each label budget of ``task``, averaged over ``cfg.study.ft_repeats`` runs.

    Run r draws label set r and fine-tunes with seed r. ``pretrained`` is one model (every run reads
    it: the spread is then over label draws only) or one model per run (run r reads ``pretrained[r]``,
    e.g. pre-training seed r: the spread then includes pre-training). ``task`` "verse_prose" (budgets
    ``cfg.study.ft_budgets``, methods (a)-(d)) or "word_order" (``cfg.study.order_budgets``, (a)-(f));
    ``methods`` picks a subset. Returns {"task", "budgets": [...], "accuracy": {method: [mean per
    budget]}, "runs": {method: [[per run]]}, "test_size": n, "majority": accuracy of always predicting
    the commoner test class}.
    """
    from tqdm.auto import tqdm
    train, test, budgets, allowed = _task(data, cfg, task)
    methods = allowed if methods is None else tuple(methods)
    unknown = set(methods) - set(allowed)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)} for task {task!r}; expected some of {allowed}")
    s, seed0 = cfg.study, cfg.train.seed
    models = list(pretrained) if isinstance(pretrained, (list, tuple)) else [pretrained] * s.ft_repeats
    if len(models) != s.ft_repeats:
        raise ValueError(f"expected one pre-trained model or cfg.study.ft_repeats = {s.ft_repeats} of them (one per "
                         f"run), got {len(models)}")
    draws = [[label_budget(train.labels, b, r, seed0) for b in budgets] for r in range(s.ft_repeats)]
    frozen: list[dict[str, tuple[torch.Tensor, torch.Tensor]]] = [{} for _ in models]   # run -> method -> features
    if "bigram_score" in methods:                        # counted once: it reads no pre-trained model
        lm = token_bigram(data.train_seqs, cfg.data.vocab_size)
        shared = _frozen_features(lambda ids: score_features(bigram_log_likelihood(lm, ids), ids >= N_SPECIAL),
                                  train, test, draws)
        for f in frozen:
            f["bigram_score"] = shared
    for model in {id(m): m for m in models}.values():   # each distinct model once, on the speeches its runs draw
        runs_of = [r for r, m in enumerate(models) if m is model]
        featurizers = {}                                 # method -> ids (N, T) -> frozen features (N, F)
        if "frozen_probe" in methods:
            featurizers["frozen_probe"] = lambda ids, m=model: features(m.encoder, ids, s.probe_pool)
        if "mlm_score" in methods:
            featurizers["mlm_score"] = lambda ids, m=model: score_features(pseudo_log_likelihood(m, ids),
                                                                           ids >= N_SPECIAL)
        for name, featurize in featurizers.items():
            shared = _frozen_features(featurize, train, test, [draws[r] for r in runs_of])
            for r in runs_of:
                frozen[r][name] = shared
    runs: dict[str, list[list[float]]] = {m: [[] for _ in budgets] for m in methods}
    bar = tqdm(total=len(budgets) * s.ft_repeats, desc=f"label budgets ({task})", disable=not progress)
    for r in range(s.ft_repeats):
        state = {k: v.detach().cpu() for k, v in models[r].state_dict().items()}
        for b, idx in enumerate(draws[r]):
            sub = train.subset(idx)
            seed = seed0 + 100 * r + b
            if "pretrained_finetuned" in methods:
                runs["pretrained_finetuned"][b].append(finetune(state, cfg, sub, test, device, seed))
            if "scratch" in methods:
                runs["scratch"][b].append(finetune(None, cfg, sub, test, device, seed))
            if "bow_tfidf" in methods:
                runs["bow_tfidf"][b].append(bow_baseline(sub.texts, sub.labels, test.texts, test.labels))
            for m, (tr, te) in frozen[r].items():
                runs[m][b].append(frozen_probe(tr[idx], sub.labels, te, test.labels))
            bar.update(1)
    bar.close()
    majority = float(max(test.labels.float().mean(), 1 - test.labels.float().mean()))
    return {"task": task, "budgets": list(budgets), "test_size": len(test.labels), "majority": majority,
            "accuracy": {m: [float(np.mean(v)) for v in runs[m]] for m in methods}, "runs": runs}


def _frozen_features(featurize: Callable[[torch.Tensor], torch.Tensor], train: Labelled, test: Labelled,
                     draws: Sequence[Sequence[torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """``featurize`` on the drawn training speeches only (NaN elsewhere: never read) and on the test set."""
    used = torch.unique(torch.cat([i for d in draws for i in d]))
    drawn = featurize(train.ids[used])                                                   # (len(used), F)
    pool = torch.full((len(train.labels), drawn.shape[1]), float("nan")).index_copy_(0, used, drawn)
    return pool, featurize(test.ids)
