"""Chapter 04: SimCLR on MNIST-5k, and what its features are worth against honest baselines (``train contrastive``).

``config`` (sizes, budgets and the study's budgets), ``task`` (the digit split, SimCLR's
two-view NT-Xent task and its training), ``study`` (probes, kNN, alignment/uniformity, the
supervised and random baselines, the ablations). Notebook 04_contrastive and the command line
use the same functions.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from ... import runtime
from ...train import RunOptions, TrainSetup
from ..base import Chapter
from ..summary import run_summary
from .config import Config, DigitData, SimCLRConfig, StudyConfig
from .study import (SupervisedResult, ablation_run, ablation_seeds, alignment_uniformity, budget_name,
                    compare_representations,
                    fit_supervised, knn_k_for, label_budget, moved_digits, pixel_features, probe_scores,
                    random_encoder, train_supervised)
from .task import (ContrastiveTask, DigitSplit, SupervisedTask, extract_features, load_split, simclr_setup,
                   train_simclr)

__all__ = ["Config", "DigitData", "SimCLRConfig", "StudyConfig", "DigitSplit", "load_split", "ContrastiveTask",
           "SupervisedTask", "extract_features", "simclr_setup", "train_simclr", "budget_name", "label_budget",
           "pixel_features", "knn_k_for", "probe_scores", "moved_digits", "alignment_uniformity", "random_encoder",
           "SupervisedResult", "fit_supervised", "train_supervised",
           "compare_representations", "ablation_run", "ablation_seeds", "build", "run", "CHAPTER"]


def build(cfg: Config) -> TrainSetup:
    """The digit split, SimCLRNet (seeded by ``cfg.train.seed``) and its task, as ``run`` trains them."""
    return simclr_setup(cfg, load_split(cfg.data.val_fraction, cfg.train.seed))


def run(cfg: Config, *, device: str | None = None, options: RunOptions = RunOptions()) -> dict[str, Any]:
    """Pretrain SimCLR, train the supervised baselines, probe everything; return the ``metrics.json`` dict."""
    started, dev = time.perf_counter(), runtime.pick_device(device)
    split = load_split(cfg.data.val_fraction, cfg.train.seed)
    model, result = train_simclr(split, cfg, device=dev,
                                 options=replace(options, desc=options.desc or f"contrastive[{cfg.profile}]"))
    budgets = cfg.study.label_budgets
    supervised, head_acc = {}, {}
    for b in budgets:
        supervised[b], head_acc[budget_name(b)] = train_supervised(split, cfg, b, device=dev,
                                                                   progress=options.progress)
    table = compare_representations(split, cfg, model, supervised)
    geometry = alignment_uniformity(model, split.val_x, seed=cfg.train.seed)
    last = result.history["train"][-1] if result.history["train"] else {}
    top = budget_name(0 if 0 in budgets else max(budgets))                     # the largest budget
    return run_summary(
        "contrastive", cfg, dev, result, started, unit="images/s (2 views each)",
        metrics={
            **{name: round(float(last.get(k, float("nan"))), 4)
               for name, k in (("final_loss", "loss"), ("pos_sim", "pos_sim"), ("neg_sim", "neg_sim"))},
            **{k: round(v, 4) for k, v in {**result.final, **geometry}.items()},
            "probe_acc": table["probe"], "knn_acc": table["knn"]},
        baselines={**{f"{m}_probe_acc_{top}": table["probe"][m][top] for m in ("pixels", "random_encoder",
                                                                               "supervised")},
                   "supervised_head_acc": {k: round(v, 4) for k, v in head_acc.items()}, "chance": 0.1},
        data={"source": "MNIST-5k (shipped with the course), stratified split", "train_images": len(split.train_x),
              "val_images": len(split.val_x), "label_budgets_per_class": list(budgets)})


CHAPTER = Chapter("contrastive", "04_contrastive.ipynb", Config, build, run)
