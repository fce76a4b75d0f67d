"""What SimCLR's features are worth (notebook 04): probes, kNN, geometry, baselines and ablations.

The representation h = f(x) is frozen and judged on the held-out val images of one
stratified split by a linear probe (logistic regression on standardised features) and by
kNN, at several label budgets (labels per class from the training split, sampled by
:func:`course_lib.data.budgets.budget_indices`, nested: the 10 include the 1). It is compared
with (b) raw pixels, (c) a random-init encoder and (d) the same encoder trained supervised
(cross-entropy, milder augmentations) on the same labels, early-stopped on a small labelled
stopping set; alignment and uniformity are those of Wang & Isola (2020). The ablations are short,
narrower SimCLR runs (``cfg.study``), also scored on *moved* digits (shifted and rotated copies of
the val images) to measure the invariance the augmentations teach.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ... import metrics, runtime
from ...augment import AugmentConfig, rotation_matrices, two_views, warp
from ...batching import map_batches
from ...data.budgets import budget_indices
from ...models.encoders import Classifier, SimCLRNet
from ...objectives.infonce import nt_xent
from ...profiles import override
from ...test_run import once_per_test_run
from ...train import RunOptions, fit
from .config import Config
from .task import DigitSplit, LossFn, SupervisedTask, extract_features, train_simclr

__all__ = ["budget_name", "label_budget", "pixel_features", "knn_k_for", "probe_scores", "moved_digits",
           "alignment_uniformity",
           "random_encoder", "SupervisedResult", "fit_supervised", "train_supervised", "compare_representations",
           "ablation_run", "ablation_seeds"]

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


def knn_k_for(per_class: int, knn_k: int = 5) -> int:
    """The k of kNN for a budget: ``knn_k``, but never more than the labels per class (k = 1 at one label
    per class, where a vote among 5 neighbours would count at least 4 images of other digits)."""
    return knn_k if per_class <= 0 else max(1, min(knn_k, per_class))


def probe_scores(train_f: torch.Tensor, train_y: torch.Tensor, val_f: torch.Tensor, val_y: torch.Tensor,
                 per_class: int, seed: int = 0, knn_k: int = 5) -> dict[str, float]:
    """Linear-probe and kNN accuracy on val, using the ``per_class`` budget of training labels
    (label draw ``seed``); kNN uses k = :func:`knn_k_for` (per_class, knn_k).

    kNN's cosine similarity is taken after removing the mean of all training features (no labels
    needed): post-ReLU features and pixels are non-negative, so uncentred every pair has a positive
    cosine and the direction of the shared mean dominates it. The probe standardises its inputs itself.
    """
    idx = label_budget(train_y, per_class, seed)
    centre = train_f.float().mean(0, keepdim=True)                          # (1, D)
    return {"probe": metrics.linear_probe(train_f[idx], train_y[idx], val_f, val_y),
            "knn": metrics.knn_accuracy(train_f[idx] - centre, train_y[idx], val_f - centre, val_y,
                                        k=knn_k_for(per_class, knn_k))}


def moved_digits(images: torch.Tensor, max_shift: int = 3, max_degrees: float = 20.0, seed: int = 0) -> torch.Tensor:
    """Each image rotated by an angle uniform in [-max_degrees, max_degrees] and shifted by a whole-pixel
    (dx, dy) uniform in [-max_shift, max_shift]^2 (fixed ``seed``): (B, C, H, W) -> (B, C, H, W).

    These moves stay inside what the standard augmentations produce, so an encoder that learned
    their invariances should classify the moved digits almost as well as the originals.
    """
    b, _, h, w = images.shape
    gen = torch.Generator().manual_seed(seed)
    theta = rotation_matrices(b, max_degrees, gen)                                  # (B, 3, 3)
    shifts = torch.randint(-max_shift, max_shift + 1, (b, 2), generator=gen).float()  # (B, 2) pixels
    theta[:, 0, 2] = -2.0 * shifts[:, 0] / w              # output(x) = input(x - shift); a pixel is 2/W wide
    theta[:, 1, 2] = -2.0 * shifts[:, 1] / h
    return warp(images, theta)


def alignment_uniformity(model: nn.Module | None, images: torch.Tensor,
                         augment_cfg: AugmentConfig = AugmentConfig(), seed: int = 0,
                         pixel_dim: int | None = None) -> dict[str, float]:
    """Wang & Isola (2020) alignment (two views, lower = better) and uniformity (lower = more spread)
    of the representation h (raw pixels if ``model`` is None), with fixed-seed views.

    Features are centred (the mean over all views removed) before the metrics normalise them:
    post-ReLU features and pixels are non-negative, so uncentred they all sit in one orthant and
    every method would look equally non-uniform. Uniformity depends on the dimension (random unit
    vectors in more dimensions are farther apart), so to compare pixels with a D-dimensional h pass
    ``pixel_dim=D``: the pixels are then projected on their first D principal components.
    """
    v1, v2 = two_views(images, augment_cfg, torch.Generator().manual_seed(seed))
    if model is None:
        h1, h2 = pixel_features(v1), pixel_features(v2)                    # (N, 784) each
    else:
        h1, h2 = extract_features(model, v1), extract_features(model, v2)  # (N, D) each
    centre = torch.cat([h1, h2]).mean(0, keepdim=True)                      # (1, D)
    h1, h2 = h1 - centre, h2 - centre
    if model is None and pixel_dim is not None:
        _, _, vt = torch.linalg.svd(torch.cat([h1, h2]), full_matrices=False)   # vt: (784, 784)
        basis = vt[:pixel_dim].T                                                # (784, pixel_dim)
        h1, h2 = h1 @ basis, h2 @ basis
    return {"alignment": metrics.alignment(h1, h2), "uniformity": metrics.uniformity(F.normalize(h1, dim=1))}


def random_encoder(cfg: Config) -> SimCLRNet:
    """Baseline (c): the same network, randomly initialised with ``cfg.train.seed``, never trained."""
    torch.manual_seed(cfg.train.seed)
    return SimCLRNet(cfg.model)


@dataclass
class SupervisedResult:
    """Baseline (d) for one label budget: the classifier at its best stopping-set accuracy, its own head's
    accuracy on the val images, the step it was taken from, the steps run and the wall time."""

    model: Classifier
    head_acc: float
    best_step: int
    steps_run: int
    stop_acc: float
    wall_s: float


class _Stop(Exception):
    """Raised from ``fit``'s evaluation hook when the stopping-set accuracy has stopped improving."""


class _StoppingTask(SupervisedTask):
    """The supervised task, evaluated on a labelled stopping set (accuracy of the head)."""

    def __init__(self, *args, stop_x: torch.Tensor, stop_y: torch.Tensor, **kwargs):
        super().__init__(*args, **kwargs)
        self.stop_x, self.stop_y = stop_x, stop_y

    def evaluate(self, model: nn.Module, step: int) -> dict[str, float]:
        preds = map_batches(model, lambda x: model(x).argmax(1), self.stop_x, 500)   # (S,)
        return {"stop_acc": metrics.accuracy(preds, self.stop_y)}


def _supervised_indices(labels: torch.Tensor, per_class: int, stop_per_class: int, seed: int
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, stopping-set indices), disjoint: the budget as every probe draws it, and
    ``stop_per_class`` further labelled images per class from outside it; with all labels
    (``per_class <= 0``) the stopping set is held out of the training images instead."""
    train_idx = label_budget(labels, per_class, seed)
    if per_class <= 0:
        stop_idx = label_budget(labels, stop_per_class, seed + 1)
        keep = torch.ones(len(labels), dtype=torch.bool)
        keep[stop_idx] = False
        return torch.nonzero(keep).flatten(), stop_idx
    rest = torch.ones(len(labels), dtype=torch.bool)
    rest[train_idx] = False
    rest_idx = torch.nonzero(rest).flatten()
    return train_idx, rest_idx[label_budget(labels[rest_idx], stop_per_class, seed + 1)].sort().values


def fit_supervised(split: DigitSplit, cfg: Config, per_class: int, *, seed: int | None = None,
                   device: str | torch.device | None = None, progress: bool = True) -> SupervisedResult:
    """Baseline (d), trained to convergence: the same encoder with cross-entropy (augmentations
    ``cfg.study.sup_augment``) on the ``per_class`` label budget of draw ``seed`` (default
    ``cfg.train.seed``), early-stopped.

    Every ``cfg.study.sup_eval_every`` steps the head is scored on a stopping set of
    ``cfg.study.sup_stop_per_class`` labelled images per class that it does not train on; training stops
    after ``cfg.study.sup_patience`` evaluations without a new best (or at ``cfg.study.sup_steps``) and the
    best weights are kept. The stopping set is labelled data SimCLR's probe does not get: it favours (d).
    """
    t0, study = time.perf_counter(), cfg.study
    seed = cfg.train.seed if seed is None else seed
    train_idx, stop_idx = _supervised_indices(split.train_y, per_class, study.sup_stop_per_class, seed)
    runtime.seed_everything(seed)
    model = Classifier(cfg.model)
    task = _StoppingTask(split.train_x[train_idx], split.train_y[train_idx], study.sup_batch_size,
                         study.sup_augment, seed, stop_x=split.train_x[stop_idx], stop_y=split.train_y[stop_idx])
    train_cfg = override(cfg.train, {"steps": study.sup_steps, "eval_every": study.sup_eval_every, "seed": seed,
                                     "warmup_steps": min(cfg.train.warmup_steps, study.sup_eval_every)})
    best = {"acc": -1.0, "step": 0, "state": None, "since": 0, "last": 0}

    def on_eval(step: int, m: dict[str, float]) -> None:
        best["last"] = step
        if m["stop_acc"] > best["acc"]:
            best.update(acc=m["stop_acc"], step=step, state=copy.deepcopy(model.state_dict()), since=0)
        else:
            best["since"] += 1
            if best["since"] >= study.sup_patience:
                raise _Stop

    try:
        fit(model, task, train_cfg, device=device,
            run=RunOptions(progress=progress, on_eval=on_eval, desc=f"supervised[{budget_name(per_class)}/class]"))
    except _Stop:
        pass
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    preds = map_batches(model, lambda x: model(x).argmax(1), split.val_x, 500)   # (M,)
    return SupervisedResult(model, metrics.accuracy(preds, split.val_y), best["step"], best["last"], best["acc"],
                            time.perf_counter() - t0)


def train_supervised(split: DigitSplit, cfg: Config, per_class: int, *, seed: int | None = None,
                     device: str | torch.device | None = None, progress: bool = True) -> tuple[Classifier, float]:
    """Baseline (d) as :func:`fit_supervised` trains it: (classifier, its own head's accuracy on the val images)."""
    r = fit_supervised(split, cfg, per_class, seed=seed, device=device, progress=progress)
    return r.model, r.head_acc


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


def ablation_seeds(split: DigitSplit, cfg: Config, seeds: list[int] | tuple[int, ...],
                   **changes: Any) -> dict[str, list[float]]:
    """:func:`ablation_run` once per training seed in ``seeds`` (the same seeds for every setting, so
    settings compare paired): each score as a list over the seeds, e.g. ``{"probe": [0.93, 0.92, 0.94], ...}``.

    Computed once per test run (:func:`course_lib.test_run.once_per_test_run`, keyed by the config, the seeds
    and the change, a loss function by its code): the Chinese notebook reads what the English one measured."""
    def compute() -> dict[str, list[float]]:
        runs = [ablation_run(split, override(cfg, {"train.seed": seed}), **changes) for seed in seeds]
        return {key: [run[key] for run in runs] for key in runs[0]}
    key = {"cfg": cfg, "split": [len(split.train_x), len(split.val_x)], "seeds": list(seeds),
           "changes": {k: v for k, v in changes.items() if k not in ("desc",)}}
    return once_per_test_run("contrastive-ablation", key, compute)


def ablation_run(split: DigitSplit, cfg: Config, *, augment_cfg: AugmentConfig | None = None,
                 loss_fn: LossFn = nt_xent, temperature: float | None = None, batch_size: int | None = None,
                 device: str | torch.device | None = None, desc: str = "ablation") -> dict[str, float]:
    """A short, narrower SimCLR run (``cfg.study.ablation_steps`` steps of ``cfg.study.ablation_batch_size``
    images, encoder width ``cfg.study.ablation_width``), with one setting changed, and its scores:
    linear probe and kNN with all labels, the same two on moved val digits (:func:`moved_digits`; the
    probe and the kNN bank are fitted on the unmoved training images), alignment and uniformity
    (standard views), final loss, wall time."""
    t0, study = time.perf_counter(), cfg.study
    changes = {"train.steps": study.ablation_steps, "train.eval_every": 0, "model.width": study.ablation_width,
               "data.batch_size": batch_size or study.ablation_batch_size, "simclr.augment": augment_cfg,
               "simclr.temperature": temperature}
    short = override(cfg, {k: v for k, v in changes.items() if v is not None})
    model, result = train_simclr(split, short, loss_fn=loss_fn, track_knn=False, device=device,
                                 options=RunOptions(progress=False, desc=desc))
    tr, va = extract_features(model, split.train_x), extract_features(model, split.val_x)
    scores = probe_scores(tr, split.train_y, va, split.val_y, 0, cfg.train.seed)
    moved = probe_scores(tr, split.train_y, extract_features(model, moved_digits(split.val_x, seed=cfg.train.seed)),
                         split.val_y, 0, cfg.train.seed)
    geo = alignment_uniformity(model, split.val_x, seed=cfg.train.seed)
    return {**scores, "probe_moved": moved["probe"], "knn_moved": moved["knn"], **geo,
            "final_loss": result.history["train"][-1]["loss"],
            "wall_s": time.perf_counter() - t0}
