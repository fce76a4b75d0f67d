"""What SimCLR's features are worth (notebook 04): probes, kNN, geometry, baselines and ablations.

The representation h = f(x) is frozen and judged on the held-out val images of one
stratified split by a linear probe (logistic regression on standardised features) and by
kNN, at several label budgets (labels per class from the training split, sampled by
:func:`course_lib.data.budgets.budget_indices`, nested: the 10 include the 1). It is compared
with (b) raw pixels, (c) a random-init encoder and (d) the same encoder trained supervised
(cross-entropy, same augmentations) on the same labels; alignment and uniformity are those
of Wang & Isola (2020). The ablations are short, narrower SimCLR runs (``cfg.study``).
"""

from __future__ import annotations

import time
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ... import metrics, runtime
from ...augment import AugmentConfig, two_views
from ...batching import map_batches
from ...data.budgets import budget_indices
from ...models.encoders import Classifier, SimCLRNet
from ...objectives.infonce import nt_xent
from ...profiles import override
from ...train import fit
from .config import Config
from .task import DigitSplit, LossFn, SupervisedTask, extract_features, train_simclr

__all__ = ["budget_name", "label_budget", "pixel_features", "probe_scores", "alignment_uniformity",
           "random_encoder", "train_supervised", "compare_representations", "ablation_run"]

METHODS = ("simclr", "pixels", "random_encoder", "supervised")


def budget_name(per_class: int) -> str:
    """'1', '10', '100' ... or 'all' for a budget of 0."""
    return "all" if per_class <= 0 else str(per_class)


def label_budget(labels: torch.Tensor, per_class: int, seed: int = 0) -> torch.Tensor:
    """Sorted indices of ``per_class`` examples of each class of ``labels`` (N,) (all if ``per_class <= 0``).

    One generator seeded by ``seed`` draws every class in turn, so budgets are nested and deterministic.
    """
    return budget_indices(labels, per_class, torch.Generator().manual_seed(seed)).sort().values


def pixel_features(images: torch.Tensor) -> torch.Tensor:
    """Raw pixels as features: (N, C, H, W) -> (N, C*H*W)."""
    return images.reshape(len(images), -1).float()


def probe_scores(train_f: torch.Tensor, train_y: torch.Tensor, val_f: torch.Tensor, val_y: torch.Tensor,
                 per_class: int, seed: int = 0, knn_k: int = 5) -> dict[str, float]:
    """Linear-probe and kNN accuracy on val, using the ``per_class`` budget of training labels."""
    idx = label_budget(train_y, per_class, seed)
    return {"probe": metrics.linear_probe(train_f[idx], train_y[idx], val_f, val_y),
            "knn": metrics.knn_accuracy(train_f[idx], train_y[idx], val_f, val_y, k=knn_k)}


def alignment_uniformity(model: nn.Module | None, images: torch.Tensor,
                         augment_cfg: AugmentConfig = AugmentConfig(), seed: int = 0) -> dict[str, float]:
    """Wang & Isola (2020) alignment (two views, lower = better) and uniformity (lower = more spread)
    of the representation h (raw pixels if ``model`` is None), with fixed-seed views.

    Features are centred (the mean over all views removed) before the metrics normalise them:
    post-ReLU features and pixels are non-negative, so uncentred they all sit in one orthant and
    every method would look equally non-uniform.
    """
    v1, v2 = two_views(images, augment_cfg, torch.Generator().manual_seed(seed))
    if model is None:
        h1, h2 = pixel_features(v1), pixel_features(v2)
    else:
        h1, h2 = extract_features(model, v1), extract_features(model, v2)
    centre = torch.cat([h1, h2]).mean(0, keepdim=True)                      # (1, D)
    h1, h2 = h1 - centre, h2 - centre
    return {"alignment": metrics.alignment(h1, h2), "uniformity": metrics.uniformity(F.normalize(h1, dim=1))}


def random_encoder(cfg: Config) -> SimCLRNet:
    """Baseline (c): the same network, randomly initialised with ``cfg.train.seed``, never trained."""
    torch.manual_seed(cfg.train.seed)
    return SimCLRNet(cfg.model)


def train_supervised(split: DigitSplit, cfg: Config, per_class: int, *, device: str | torch.device | None = None,
                     progress: bool = True) -> tuple[Classifier, float]:
    """Baseline (d): the same encoder trained with cross-entropy (SimCLR's augmentations) on the
    ``per_class`` label budget for ``cfg.study.sup_steps`` steps.

    Returns the classifier and its own head's accuracy on the val images.
    """
    seed = cfg.train.seed
    idx = label_budget(split.train_y, per_class, seed)
    runtime.seed_everything(seed)
    model = Classifier(cfg.model)
    task = SupervisedTask(split.train_x[idx], split.train_y[idx], cfg.study.sup_batch_size, cfg.simclr.augment,
                          seed)
    train_cfg = override(cfg.train, {"steps": cfg.study.sup_steps, "eval_every": 0})
    fit(model, task, train_cfg, device=device, progress=progress, desc=f"supervised[{budget_name(per_class)}/class]")
    preds = map_batches(model, lambda x: model(x).argmax(1), split.val_x, 500)   # (M,)
    return model, metrics.accuracy(preds, split.val_y)


def compare_representations(split: DigitSplit, cfg: Config, simclr: nn.Module,
                            supervised: Mapping[int, nn.Module] | None = None,
                            random_model: nn.Module | None = None) -> dict[str, dict[str, dict[str, float]]]:
    """Probe and kNN accuracy for (a) SimCLR, (b) pixels, (c) random encoder, (d) supervised.

    Returns ``{"probe": {method: {budget: acc}}, "knn": {...}}`` (rounded to 4 digits); ``supervised[b]``
    is the model trained on budget b's labels and is probed with those same labels.
    """
    random_model = random_model if random_model is not None else random_encoder(cfg)
    feats = {name: (extract_features(m, split.train_x), extract_features(m, split.val_x))
             for name, m in (("simclr", simclr), ("random_encoder", random_model))}
    feats["pixels"] = (pixel_features(split.train_x), pixel_features(split.val_x))
    table: dict[str, dict[str, dict[str, float]]] = {"probe": {}, "knn": {}}
    for name in METHODS:
        if name == "supervised" and not supervised:
            continue
        for kind in table:
            table[kind][name] = {}
        for b in cfg.study.label_budgets:
            if name == "supervised":
                m = supervised[b]  # type: ignore[index]
                tr, va = extract_features(m, split.train_x), extract_features(m, split.val_x)
            else:
                tr, va = feats[name]
            scores = probe_scores(tr, split.train_y, va, split.val_y, b, cfg.train.seed)
            for kind in table:
                table[kind][name][budget_name(b)] = round(scores[kind], 4)
    return table


def ablation_run(split: DigitSplit, cfg: Config, *, augment_cfg: AugmentConfig | None = None,
                 loss_fn: LossFn = nt_xent, temperature: float | None = None, batch_size: int | None = None,
                 device: str | torch.device | None = None, desc: str = "ablation") -> dict[str, float]:
    """A short, narrower SimCLR run (``cfg.study.ablation_steps`` steps of ``cfg.study.ablation_batch_size``
    images, encoder width ``cfg.study.ablation_width``), with one setting changed, and its scores:
    linear probe and kNN with all labels, alignment and uniformity (standard views), final loss, wall time."""
    t0, study = time.perf_counter(), cfg.study
    changes = {"train.steps": study.ablation_steps, "train.eval_every": 0, "model.width": study.ablation_width,
               "data.batch_size": batch_size or study.ablation_batch_size, "simclr.augment": augment_cfg,
               "simclr.temperature": temperature}
    short = override(cfg, {k: v for k, v in changes.items() if v is not None})
    model, result = train_simclr(split, short, loss_fn=loss_fn, track_knn=False, device=device, progress=False,
                                 desc=desc)
    tr, va = extract_features(model, split.train_x), extract_features(model, split.val_x)
    scores = probe_scores(tr, split.train_y, va, split.val_y, 0, cfg.train.seed)
    geo = alignment_uniformity(model, split.val_x, seed=cfg.train.seed)
    return {**scores, **geo, "final_loss": result.history["train"][-1]["loss"],
            "wall_s": time.perf_counter() - t0}
