"""Chapter 02: masked-LM pre-training on Shakespeare, then fine-tuning with few labels (``train mlm``).

Read in the order of notebook 02: ``config`` (what you can change), ``data`` (WordPiece rows
and the verse/prose label), ``task`` (BERT pre-training and its evaluation), ``study`` (the
label-budget comparison). :func:`build` makes the pre-training run whose checkpoint
:func:`run` leaves in its ``out_dir`` (the other seeds in ``seed1/``, ...); :func:`pretrain`
loads a finished one (the notebook's and the fine-tuning study's hand-off) or trains it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ... import runtime
from ...data.text import CLS, MASK, N_SPECIAL, PAD, SEP, UNK
from ...flops import model_flops_per_token
from ...models.mlm import MaskedLM
from ...profiles import override
from ...train import RunOptions, TrainResult, TrainSetup, fit, fit_or_load
from ..base import Chapter
from ..summary import rounded, run_summary
from .config import Config, EncoderModel, MLMObjective, Study, TokenData, model_config
from .data import (Labelled, MLMData, encode_texts, labelled_split, pack_sequences, prepare_data, shuffled_or_not,
                   speech_text, verse_or_prose)
from .study import (METHODS, ORDER_METHODS, TASKS, ClassifyTask, bigram_log_likelihood, bow_baseline,
                    compare_label_budgets, features, finetune, frozen_probe, label_budget, probe_at_budget,
                    pseudo_log_likelihood, score_features, token_bigram)
from .task import (MLMTask, copy_accuracy, eval_masks, evaluate_mlm, fill_in_blank, mask, unigram_baseline,
                   unigram_log_prior)

__all__ = ["Config", "EncoderModel", "TokenData", "MLMObjective", "Study", "model_config", "PAD", "UNK", "CLS",
           "SEP", "MASK", "N_SPECIAL", "speech_text", "verse_or_prose", "pack_sequences", "encode_texts", "Labelled",
           "MLMData", "labelled_split", "shuffled_or_not", "prepare_data", "mask", "MLMTask", "eval_masks",
           "evaluate_mlm", "copy_accuracy", "unigram_log_prior", "unigram_baseline", "fill_in_blank", "METHODS",
           "ORDER_METHODS", "TASKS", "ClassifyTask", "finetune", "features", "label_budget", "probe_at_budget",
           "frozen_probe", "bow_baseline", "pseudo_log_likelihood", "score_features", "token_bigram",
           "bigram_log_likelihood", "compare_label_budgets", "MLMSetup", "build", "pretrain", "seed_config",
           "seed_folder", "pretrain_runs", "also_trains", "run", "CHAPTER"]


@dataclass
class MLMSetup(TrainSetup):
    """The pre-training run of a config, with the data it reads."""

    data: MLMData | None = None


def build(cfg: Config, *, head: str = "masked", loss_on: str = "masked") -> MLMSetup:
    """Data, MaskedLM (seeded by ``cfg.train.seed``; decoder bias at the unigram prior), MLMTask and ``cfg.train``.

    ``head`` and ``loss_on`` select the notebook's variants of :class:`MLMTask` (timing, the mistake run).
    """
    data = prepare_data(cfg)
    runtime.seed_everything(cfg.train.seed)
    model = MaskedLM(model_config(cfg))
    if cfg.mlm.prior_bias:
        with torch.no_grad():
            model.head.decoder.bias.copy_(unigram_log_prior(data.train_seqs, cfg.data.vocab_size))
    task = MLMTask(data.train_seqs, data.val_seqs, cfg, head=head, loss_on=loss_on)
    return MLMSetup(model, task, cfg.train, data)


def pretrain(cfg: Config, device: str | torch.device | None = None, *, folder: str | Path | None = None,
             progress: bool = True, head: str = "masked", loss_on: str = "masked"
             ) -> tuple[MaskedLM, TrainResult, str]:
    """``(model, result, message)``: the finished run of ``build(cfg, ...)`` in ``folder``, else trained there.

    Without a folder it always trains (and keeps no checkpoint): the notebook's short mistake runs.
    """
    s = build(cfg, head=head, loss_on=loss_on)
    result, how = fit_or_load(s.model, s.task, s.train, folder, device=device, progress=progress,
                              desc=f"mlm[{cfg.profile}]")
    return s.model, result, how


def seed_config(cfg: Config, run: int) -> Config:
    """The settings of independent pre-training run ``run``: ``cfg`` with ``train.seed`` moved on by ``run``."""
    return override(cfg, {"train.seed": cfg.train.seed + run})


def seed_folder(folder: str | Path, run: int) -> Path:
    """Where run ``run`` keeps its checkpoint: ``folder`` itself for run 0, ``folder/seed{run}`` after it."""
    return Path(folder) if run == 0 else Path(folder) / f"seed{run}"


def pretrain_runs(cfg: Config, device: str | torch.device | None = None, *, folder: str | Path | None = None,
                  progress: bool = True) -> list[tuple[MaskedLM, TrainResult, str]]:
    """:func:`pretrain` for each of the ``cfg.study.ft_repeats`` independent runs (run r: seed ``train.seed + r``).

    Run 0 is the chapter's main model (its checkpoint in ``folder``); the others sit in ``folder/seed{r}``.
    The fine-tuning study pairs run r of pre-training with label draw r (:func:`compare_label_budgets`).
    """
    return [pretrain(seed_config(cfg, r), device, folder=None if folder is None else seed_folder(folder, r),
                     progress=progress) for r in range(cfg.study.ft_repeats)]


def also_trains(cfg: Config) -> dict[str, MLMSetup]:
    """The pre-training runs after the first that :func:`run` checkpoints, by sub-folder (``seed1``, ...)."""
    return {seed_folder("", r).as_posix(): build(seed_config(cfg, r)) for r in range(1, cfg.study.ft_repeats)}


def run(cfg: Config, *, device: str | None = None, options: RunOptions = RunOptions()) -> dict[str, Any]:
    """Pre-train, compare with the unigram baseline, compare (a)-(d) per label budget; the ``metrics.json`` dict."""
    started, dev = time.perf_counter(), runtime.pick_device(device)
    s = build(cfg)
    result = fit(s.model, s.task, s.train, device=dev,
                 run=replace(options, desc=options.desc or f"mlm[{cfg.profile}]"))
    models = [s.model]
    for r in range(1, cfg.study.ft_repeats):             # the other independent runs the study pairs with label draws
        more = build(seed_config(cfg, r))
        fit(more.model, more.task, more.train, device=dev,
            run=replace(options, out_dir=None if options.out_dir is None else seed_folder(options.out_dir, r),
                        desc=f"mlm[{cfg.profile}] seed {more.train.seed}"))
        models.append(more.model)
    unigram = unigram_baseline(s.data.train_seqs, s.task.val_seqs, cfg)
    cmp = compare_label_budgets(models, s.data, cfg, dev, progress=options.progress)
    order = compare_label_budgets(models, s.data, cfg, dev, progress=options.progress, task="word_order")
    return run_summary(
        "mlm", cfg, dev, result, started, unit="tokens/s",
        metrics=rounded({**result.final, "finetune_accuracy": _by_budget(cmp["accuracy"], cmp["budgets"]),
                         "finetune_accuracy_sd": _spread(cmp), "finetune_runs": cfg.study.ft_repeats,
                         "word_order_accuracy": _by_budget(order["accuracy"], order["budgets"]),
                         "word_order_accuracy_sd": _spread(order),
                         "word_order_gain_over_non_pretrained": _gain(order)}),
        baselines=rounded({"unigram_masked_accuracy": unigram["masked_accuracy"],
                           "unigram_masked_perplexity": unigram["masked_perplexity"],
                           "finetune_majority_class": cmp["majority"], "word_order_majority_class": order["majority"]}),
        data={"source": "Shakespeare's plays (shipped with course_lib), split by play",
              "train_sequences": len(s.data.train_seqs),
              "val_sequences": len(s.task.val_seqs), "vocab_size": cfg.data.vocab_size,
              "finetune_task": "verse (0) vs prose (1), text lower-cased, line breaks removed",
              "finetune_train_pool": len(s.data.train_labelled.labels), "finetune_test": cmp["test_size"],
              "word_order_task": f"the first {cfg.study.order_words} words of a speech: kept (0) or shuffled (1)",
              "word_order_train_pool": len(s.data.order_train.labels), "word_order_test": order["test_size"]},
        model_flops_per_token=round(model_flops_per_token(s.model, cfg.data.seq_len,
                                                          head_fraction=cfg.mlm.select_prob)))


def _by_budget(accuracy: dict[str, list[float]], budgets: list[int]) -> dict[str, dict[str, float]]:
    return {m: {str(b): a for b, a in zip(budgets, accs)} for m, accs in accuracy.items()}


def _spread(cmp: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Sample sd over the ``cfg.study.ft_repeats`` runs (pre-training seed + label draw), per method and budget."""
    return {m: {str(b): float(np.std(r, ddof=1)) if len(r) > 1 else None for b, r in zip(cmp["budgets"], runs)}
            for m, runs in cmp["runs"].items()}


def _gain(cmp: dict[str, Any]) -> dict[str, float]:
    """Per budget: the best pre-trained method's accuracy minus the best non-pre-trained one's (scratch, TF-IDF)."""
    acc, pre = cmp["accuracy"], ("pretrained_finetuned", "frozen_probe", "mlm_score")
    return {str(b): max(acc[m][j] for m in pre if m in acc) - max(acc["scratch"][j], acc["bow_tfidf"][j])
            for j, b in enumerate(cmp["budgets"])}


CHAPTER = Chapter("mlm", "02_masked_lm.ipynb", Config, build, run, also_trains)
