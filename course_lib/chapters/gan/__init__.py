"""Chapter 03: a DCGAN on MNIST-5k, judged by a small digit classifier (``train gan``, notebook 03).

``config`` (sizes, the GAN recipe, budgets), ``task`` (the alternating D/G step in the course
loop), ``judge`` (the classifier, the Fréchet distance, its baselines, nearest neighbours).
:func:`run` trains the judge, then the GAN, and reports the GAN next to its baselines: the
real-vs-real floor and an untrained generator.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any
from collections.abc import Mapping

import torch

from ... import runtime
from ...models.gan import GAN, GANConfig, build_gan
from ...profiles import override
from ...train import RunOptions, TrainResult, TrainSetup, fit
from ..base import Chapter
from ..summary import run_summary
from .config import Config, GANData, GANModel, GANRecipe, Study
from .judge import ClassifierTask, Judge, nearest_neighbours, train_classifier
from .task import GANTask, eval_samples, load_data

__all__ = ["Config", "GANModel", "GANData", "GANRecipe", "Study", "load_data", "eval_samples", "GANTask",
           "ClassifierTask", "train_classifier", "Judge", "nearest_neighbours", "build", "train_gan", "run",
           "CHAPTER"]


def build(cfg: Config, data: Mapping[str, torch.Tensor] | None = None, judge: Judge | None = None) -> TrainSetup:
    """The GAN (seeded by ``cfg.train.seed``), its task on ``data`` (loaded if None) and ``cfg.train``."""
    data = load_data(cfg.data.val_fraction, cfg.train.seed) if data is None else data
    runtime.seed_everything(cfg.train.seed)
    gan = build_gan(GANConfig(cfg.model.kind, cfg.model.latent_dim, cfg.model.width))
    return TrainSetup(gan, GANTask(cfg, data["train_x"], judge), cfg.train)


def train_gan(cfg: Config, data: Mapping[str, torch.Tensor], judge: Judge | None = None,
              device: str | torch.device | None = None, steps: int | None = None,
              init_state: Mapping[str, torch.Tensor] | None = None,
              options: RunOptions = RunOptions()) -> tuple[GAN, GANTask, TrainResult]:
    """Build the GAN for ``cfg`` and train it with ``fit`` (``steps`` overrides ``cfg.train.steps``).

    ``init_state`` (a GAN ``state_dict``) starts from trained weights with fresh optimizers,
    e.g. to continue a trained GAN with another generator loss.
    """
    if steps is not None:
        cfg = override(cfg, {"train.steps": steps})
    s = build(cfg, data, judge)
    if init_state is not None:
        s.model.load_state_dict(init_state)
    result = fit(s.model, s.task, s.train, device=device,
                 run=replace(options, desc=options.desc or f"{cfg.model.kind}[{cfg.gan.generator_loss}]"))
    return s.model, s.task, result


def run(cfg: Config, *, device: str | None = None, options: RunOptions = RunOptions()) -> dict[str, Any]:
    """Train the judge and the GAN for ``cfg``; return the ``metrics.json`` dict."""
    started, dev = time.perf_counter(), runtime.pick_device(device)
    n, seed = cfg.study.eval_samples, cfg.train.seed
    data = load_data(cfg.data.val_fraction, seed)
    classifier, clf_result = train_classifier(cfg, data, dev, options.progress)
    judge = Judge(classifier, data)
    untrained = build_gan(GANConfig(cfg.model.kind, cfg.model.latent_dim, cfg.model.width)).to(dev)
    untrained_fd = judge.frechet(eval_samples(untrained, n, seed))
    gan, task, result = train_gan(cfg, data, judge, dev, options=options)
    samples = eval_samples(gan, n, seed)
    averaged = eval_samples(task.averaged(gan), n, seed) if task.ema is not None else None
    shares = judge.class_shares(samples)
    nn_fake, _ = nearest_neighbours(samples[:500], data["train_x"])
    nn_real, _ = nearest_neighbours(data["val_x"][:500], data["train_x"])
    last = result.history["train"][-50:]
    return run_summary(
        "gan", cfg, dev, result, started, unit="real images/s",
        metrics={"frechet_distance": round(judge.frechet(samples), 3),
                 "frechet_distance_ema": round(judge.frechet(averaged), 3) if averaged is not None else None,
                 "min_class_share": round(float(shares.min()), 4),
                 "class_shares": [round(float(s), 4) for s in shares],
                 "classifier_accuracy": round(judge.accuracy, 4),
                 "nn_distance_samples": round(float(nn_fake.median()), 3),
                 "d_real": round(sum(r["d_real"] for r in last) / len(last), 4),
                 "d_fake": round(sum(r["d_fake"] for r in last) / len(last), 4)},
        baselines={"frechet_real_vs_real": round(judge.real_floor(), 3),
                   "frechet_untrained_generator": round(untrained_fd, 3),
                   "nn_distance_heldout_real": round(float(nn_real.median()), 3)},
        data={"source": "MNIST-5k (shipped with the course), stratified 80/20 split",
              "train_images": len(data["train_x"]), "val_images": len(data["val_x"])},
        classifier_wall_s=round(clf_result.wall_s, 2))


CHAPTER = Chapter("gan", "03_gan.ipynb", Config, build, run)
