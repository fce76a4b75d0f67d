"""How notebook 03 scores a GAN: a trained digit classifier as the judge, next to its baselines.

FID (Heusel et al., 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local
Nash Equilibrium") compares generated and real images in a classifier's penultimate features.
Here the classifier is a small CNN trained on MNIST-5k with ``fit`` (:func:`train_classifier`);
:class:`Judge` gives the Fréchet distance of generated vs held-out real images, the
real-vs-real floor (training vs held-out real), the class shares of samples (mode collapse
shows as missing classes); :func:`nearest_neighbours` finds each sample's closest training
image in pixel space (memorisation).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ... import runtime
from ...batching import random_rows
from ...metrics import accuracy, frechet_distance
from ...models.classifier import DigitClassifier, predict_in_batches
from ...train import RunOptions, Task, TrainConfig, TrainResult, fit
from .config import Config

__all__ = ["ClassifierTask", "train_classifier", "Judge", "nearest_neighbours"]


class ClassifierTask(Task):
    """Cross-entropy on random training batches; validation accuracy on the held-out split."""

    def __init__(self, data: Mapping[str, torch.Tensor], batch_size: int, seed: int = 0):
        self.data, self.batch_size, self.seed = data, batch_size, seed

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        idx = random_rows(len(self.data["train_x"]), self.batch_size, self.seed, step)
        return {"x": self.data["train_x"][idx], "y": self.data["train_y"][idx]}

    def loss(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return F.cross_entropy(model(batch["x"]).float(), batch["y"])

    def evaluate(self, model: nn.Module, step: int) -> dict[str, float]:
        _, logits = predict_in_batches(model, self.data["val_x"])
        return {"val_accuracy": accuracy(logits, self.data["val_y"])}


def train_classifier(cfg: Config, data: Mapping[str, torch.Tensor], device: str | torch.device | None = None,
                     progress: bool = True) -> tuple[DigitClassifier, TrainResult]:
    """Train the judge's :class:`DigitClassifier` (``cfg.study`` budget) with ``fit``; accuracy in ``result.final``."""
    s, seed = cfg.study, cfg.train.seed
    runtime.seed_everything(seed)
    model = DigitClassifier()
    train_cfg = TrainConfig(steps=s.classifier_steps, lr=s.classifier_lr, weight_decay=1e-4, warmup_steps=20,
                            seed=seed)
    result = fit(model, ClassifierTask(data, s.classifier_batch, seed), train_cfg, device=device,
                 run=RunOptions(progress=progress, desc="digit classifier"))
    return model.eval(), result


class Judge:
    """Scores images with a trained classifier: Fréchet distance to held-out reals, class shares."""

    def __init__(self, classifier: DigitClassifier, data: Mapping[str, torch.Tensor]):
        self.classifier = classifier.eval()
        self.val_feats, val_logits = predict_in_batches(classifier, data["val_x"])          # (V, D), (V, 10)
        self.accuracy = accuracy(val_logits, data["val_y"])
        n = len(data["val_x"])
        pick = torch.randperm(len(data["train_x"]), generator=torch.Generator().manual_seed(1))[:n]
        self.train_feats, _ = predict_in_batches(classifier, data["train_x"][pick])         # (V, D)

    def frechet(self, images: torch.Tensor) -> float:
        """Fréchet distance between ``images``' features and the held-out real images' features."""
        feats, _ = predict_in_batches(self.classifier, images)
        return frechet_distance(feats, self.val_feats)

    def real_floor(self) -> float:
        """The same distance for real training images (as many as held out): the best a GAN can hope for."""
        return frechet_distance(self.train_feats, self.val_feats)

    def class_shares(self, images: torch.Tensor) -> torch.Tensor:
        """(10,) fraction of ``images`` the classifier assigns to each digit."""
        _, logits = predict_in_batches(self.classifier, images)
        return torch.bincount(logits.argmax(1), minlength=10).float() / len(images)

    def score(self, images: torch.Tensor) -> dict[str, float]:
        """{'fd', 'min_class_share'} for a batch of generated images in [-1, 1]."""
        return {"fd": self.frechet(images), "min_class_share": float(self.class_shares(images).min())}


def nearest_neighbours(queries: torch.Tensor, references: torch.Tensor, chunk: int = 256
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """(distances (N,), indices (N,)): each query's nearest reference image in pixel L2 distance."""
    if queries.ndim != 4 or references.ndim != 4 or queries.shape[1:] != references.shape[1:]:
        raise ValueError(f"expected two image batches (N, C, H, W) of the same image shape, got "
                         f"{tuple(queries.shape)} and {tuple(references.shape)}")
    refs = references.flatten(1).float()                                          # (M, C*H*W)
    dists, idxs = [], []
    for start in range(0, len(queries), chunk):
        d = torch.cdist(queries[start:start + chunk].flatten(1).float(), refs)   # (n, M)
        best = d.min(1)
        dists.append(best.values)
        idxs.append(best.indices)
    return torch.cat(dists), torch.cat(idxs)
