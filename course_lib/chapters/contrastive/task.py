"""SimCLR as a training task (notebook 04): two augmented views per image, NT-Xent on the projections.

SimCLR (Chen et al., 2020, "A Simple Framework for Contrastive Learning of Visual
Representations"): an encoder f, a projection head g and the NT-Xent loss on z = g(f(x))
(:mod:`course_lib.objectives.infonce`); under DDP the projections of every process are
gathered, so each image meets the negatives of the whole global batch. Also here: the
digit split every probe uses, the supervised baseline's task (the same encoder, cross-entropy
on a label budget) and :func:`train_simclr`, which the chapter's run and the ablations share.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ... import metrics, runtime
from ...augment import AugmentConfig, augment
from ...batching import map_batches, random_rows, step_generator
from ...data.images import load_mnist5k, stratified_split
from ...distributed import gather_batch
from ...models.encoders import SimCLRNet
from ...objectives.infonce import nt_xent, pair_similarities
from ...train import RunOptions, Task, TrainResult, TrainSetup, fit
from .config import Config, DigitData, SimCLRConfig

__all__ = ["LossFn", "DigitSplit", "load_split", "extract_features", "ContrastiveTask", "SupervisedTask",
           "simclr_setup", "train_simclr"]

LossFn = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]


@dataclass(frozen=True)
class DigitSplit:
    """MNIST-5k split once: train images/labels (pretraining + label budgets) and held-out val."""

    train_x: torch.Tensor        # (N, 1, 28, 28) float in [0, 1]
    train_y: torch.Tensor        # (N,) int64
    val_x: torch.Tensor          # (M, 1, 28, 28)
    val_y: torch.Tensor          # (M,)


def load_split(val_fraction: float = 0.2, seed: int = 0) -> DigitSplit:
    """MNIST-5k with a stratified train/val split (the same split for every probe)."""
    images, labels = load_mnist5k()
    train_idx, val_idx = stratified_split(labels, val_fraction, seed)
    return DigitSplit(images[train_idx], labels[train_idx], images[val_idx], labels[val_idx])


def extract_features(model: nn.Module, images: torch.Tensor, projection: bool = False,
                     batch_size: int = 500) -> torch.Tensor:
    """Frozen features (N, D) on CPU: ``model.features`` (h), or ``model(x)`` (z) if ``projection``.

    Runs in eval mode (BatchNorm uses running statistics) and restores the previous mode.
    """
    if images.ndim != 4:
        raise ValueError(f"expected images (N, C, H, W), got {tuple(images.shape)}")
    return map_batches(model, model if projection else model.features, images, batch_size)


class ContrastiveTask(Task):
    """SimCLR step: sample B images, make two views each, NT-Xent on the projections.

    ``loss_fn(z1, z2, temperature)`` defaults to :func:`nt_xent`; the notebook passes broken
    variants to show the common mistakes. ``eval_split`` adds a kNN accuracy on its val images.
    """

    def __init__(self, images: torch.Tensor, data: DigitData, simclr: SimCLRConfig = SimCLRConfig(), *,
                 seed: int = 0, loss_fn: LossFn = nt_xent, eval_split: DigitSplit | None = None):
        if images.ndim != 4:
            raise ValueError(f"expected images (N, C, H, W), got {tuple(images.shape)}")
        if not 2 <= data.batch_size <= len(images):
            raise ValueError(f"batch_size must be in [2, {len(images)}], got {data.batch_size}")
        self.images, self.data, self.simclr = images, data, simclr
        self.seed, self.loss_fn, self.eval_split = seed, loss_fn, eval_split

    def batch(self, step: int) -> torch.Tensor:
        idx = torch.randperm(len(self.images), generator=step_generator(self.seed, step))[: self.data.batch_size]
        return self.images[idx]                                               # (B, 1, H, W), no repeats

    def loss(self, model: nn.Module, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        b = batch.shape[0]
        views = augment(torch.cat([batch, batch]), self.simclr.augment)      # (2B, 1, H, W), global RNG
        z = model(views)                                                      # (2B, P), one pass: shared BN stats
        z1, z2 = gather_batch(z[:b]), gather_batch(z[b:])                     # under DDP: every rank's negatives
        pos, neg = pair_similarities(z1, z2)
        return self.loss_fn(z1, z2, self.simclr.temperature), {"pos_sim": pos, "neg_sim": neg}

    def evaluate(self, model: nn.Module, step: int) -> dict[str, float]:
        if self.eval_split is None:
            return {}
        s = self.eval_split
        train_f, val_f = extract_features(model, s.train_x), extract_features(model, s.val_x)
        return {"val_knn_acc": metrics.knn_accuracy(train_f, s.train_y, val_f, s.val_y, k=5)}

    def signature(self) -> dict[str, Any]:
        return {"data": self.data, "simclr": self.simclr, "seed": self.seed,
                "loss_fn": getattr(self.loss_fn, "__qualname__", repr(self.loss_fn))}


class SupervisedTask(Task):
    """Cross-entropy on augmented labelled images, sampled with replacement (any budget, same cost)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
                 augment_cfg: AugmentConfig = AugmentConfig(), seed: int = 0):
        if images.ndim != 4 or labels.shape != (len(images),):
            raise ValueError(f"expected images (N, C, H, W) and labels (N,), got {tuple(images.shape)}, "
                             f"{tuple(labels.shape)}")
        self.images, self.labels, self.batch_size = images, labels, batch_size
        self.augment_cfg, self.seed = augment_cfg, seed

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        idx = random_rows(len(self.images), self.batch_size, self.seed, step)
        return {"x": self.images[idx], "y": self.labels[idx]}

    def loss(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        logits = model(augment(batch["x"], self.augment_cfg))                # (B, 10)
        return F.cross_entropy(logits.float(), batch["y"])

    def signature(self) -> dict[str, Any]:
        return {"examples": len(self.images), "batch_size": self.batch_size, "augment": self.augment_cfg,
                "seed": self.seed}


def simclr_setup(cfg: Config, split: DigitSplit, *, loss_fn: LossFn = nt_xent, track_knn: bool = True
                 ) -> TrainSetup:
    """SimCLRNet (seeded by ``cfg.train.seed``) and its task on ``split``'s training images, for ``cfg``."""
    runtime.seed_everything(cfg.train.seed)
    model = SimCLRNet(cfg.model)
    task = ContrastiveTask(split.train_x, cfg.data, cfg.simclr, seed=cfg.train.seed, loss_fn=loss_fn,
                           eval_split=split if track_knn else None)
    return TrainSetup(model, task, cfg.train)


def train_simclr(split: DigitSplit, cfg: Config, *, loss_fn: LossFn = nt_xent, track_knn: bool = True,
                 device: str | torch.device | None = None,
                 options: RunOptions = RunOptions()) -> tuple[SimCLRNet, TrainResult]:
    """Pretrain SimCLR on the training images (no labels) with :func:`course_lib.train.fit`.

    ``track_knn`` evaluates a kNN accuracy on the val images every ``cfg.train.eval_every`` steps.
    """
    s = simclr_setup(cfg, split, loss_fn=loss_fn, track_knn=track_knn)
    result = fit(s.model, s.task, s.train, device=device,
                 run=replace(options, desc=options.desc or "simclr"))
    return s.model, result
