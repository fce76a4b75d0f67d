"""What masked-frame pre-training is worth (notebook 06): keyword recognition on new speakers.

At each label budget (clips per word from the training speakers, drawn ``study.draws`` times)
five methods are scored on the *test speakers*:

(a) ``pretrained_finetuned``: the pre-trained encoder + a linear layer, all fine-tuned;
(b) ``scratch_finetuned``: the same network from random weights, trained the same way;
(c) ``pretrained_probe``: the frozen pre-trained encoder, mean-pooled, + logistic regression;
(d) ``logmel_stats``: logistic regression on each band's mean and standard deviation over time;
(e) ``random_probe``: a frozen random encoder + logistic regression.
"""

from __future__ import annotations

import statistics
from typing import Any
from collections.abc import Callable

import torch
from torch import nn

from ... import metrics
from ...batching import map_batches
from ...data.budgets import budget_indices
from ...models.frames import FrameClassifier, FrameReconstructor
from ...runtime import seed_everything
from ...train import TrainConfig, fit
from .config import Config
from .data import FrameData
from .task import KeywordTask, new_classifier

__all__ = ["METHODS", "logmel_stats", "encoder_features", "finetune", "classify_accuracy", "budget_name",
           "recognition_study", "spread"]

METHODS = ("pretrained_finetuned", "scratch_finetuned", "pretrained_probe", "logmel_stats", "random_probe")


def budget_name(per_word: int) -> str:
    """'1', '5', '20' ... or 'all' for a budget of 0."""
    return "all" if per_word <= 0 else str(per_word)


def logmel_stats(x: torch.Tensor) -> torch.Tensor:
    """(N, T, F) -> (N, 2F): each band's mean and standard deviation over time (no learning)."""
    return torch.cat([x.mean(dim=1), x.std(dim=1)], dim=1)


def encoder_features(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Frozen, mean-pooled encoder outputs (N, D) of every frame, nothing hidden."""
    return map_batches(encoder, lambda xb: encoder(xb).mean(dim=1), x, 256)


def finetune(cfg: Config, x: torch.Tensor, y: torch.Tensor, pretrained: FrameReconstructor | None, seed: int,
             device: torch.device | str | None = None) -> FrameClassifier:
    """A keyword classifier trained on (x, y) for ``study.ft_steps`` steps, from the pre-trained encoder or scratch."""
    n_classes = int(y.max()) + 1
    model = new_classifier(cfg, n_classes, pretrained, seed)
    s = cfg.study
    train = TrainConfig(steps=s.ft_steps, lr=s.ft_lr, weight_decay=0.01, warmup_steps=max(1, s.ft_steps // 10),
                        seed=seed)
    fit(model, KeywordTask(x, y, s.ft_batch_size, seed), train, device=device, progress=False,
        checkpoint_seconds=None)
    return model


def classify_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy of ``model``'s argmax on (x, y)."""
    logits = map_batches(model, model, x, 256)
    return float((logits.argmax(dim=1) == y).float().mean())


def spread(values: list[float]) -> dict[str, Any]:
    """{"mean", "std", "draws"}: the sample standard deviation (0 for one draw)."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "draws": list(values)}


def recognition_study(cfg: Config, data: FrameData, pretrained: FrameReconstructor,
                      device: torch.device | str | None = None,
                      on_result: Callable[[str, str, int, float], None] | None = None) -> dict[str, dict[str, Any]]:
    """{method: {budget: spread of test accuracy over draws}} for every method of :data:`METHODS`."""
    seed_everything(cfg.train.seed)
    random_encoder = FrameReconstructor(cfg.model).encoder
    frozen = {"pretrained_probe": (encoder_features(pretrained.encoder, data.train_x),
                                   encoder_features(pretrained.encoder, data.test_x)),
              "logmel_stats": (logmel_stats(data.train_x), logmel_stats(data.test_x)),
              "random_probe": (encoder_features(random_encoder, data.train_x),
                               encoder_features(random_encoder, data.test_x))}
    table: dict[str, dict[str, list[float]]] = {m: {} for m in METHODS}
    for budget in cfg.study.label_budgets:
        name = budget_name(budget)
        for draw in range(cfg.study.draws):
            idx = budget_indices(data.train_y, budget, torch.Generator().manual_seed(draw)).sort().values
            x, y = data.train_x[idx], data.train_y[idx]
            scores = {}
            for method, source in (("pretrained_finetuned", pretrained), ("scratch_finetuned", None)):
                model = finetune(cfg, x, y, source, seed=cfg.train.seed + draw, device=device)
                scores[method] = classify_accuracy(model, data.test_x, data.test_y)
            for method, (train_f, test_f) in frozen.items():
                scores[method] = metrics.linear_probe(train_f[idx], y, test_f, data.test_y)
            for method, acc in scores.items():
                table[method].setdefault(name, []).append(acc)
                if on_result is not None:
                    on_result(method, name, draw, acc)
    return {m: {b: spread(v) for b, v in per_budget.items()} for m, per_budget in table.items()}
