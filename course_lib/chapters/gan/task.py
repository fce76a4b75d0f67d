"""The GAN game in the course loop (notebook 03, section 4): alternating D and G steps.

The step follows the PyTorch DCGAN example's narration, "(1) update D, (2) update G"
(Goodfellow et al., 2014, "Generative Adversarial Nets"; Radford, Metz & Chintala, 2015,
DCGAN). It owns two Adam optimizers, so :class:`GANTask` overrides :meth:`Task.train_step`;
:func:`course_lib.train.fit` still does the batching, the schedule (for both optimizers),
the history, checkpoints, the NaN check and progress. Batches (real images and noise) are a
pure function of the step, so resume is exact.
"""

from __future__ import annotations

import contextlib

import copy
from typing import Any
from collections.abc import Mapping

import torch
from torch import nn

from ...batching import step_generator
from ...data.images import load_mnist5k, stratified_split, to_tanh_range
from ...models.gan import GAN, sample_latent
from ...objectives.gan import discriminator_loss, generator_loss
from ...train import StepTools, Task, TrainConfig
from .config import Config
from .judge import Judge

__all__ = ["load_data", "eval_samples", "recompute_batchnorm", "GANTask"]
_EMA_WARMUP = 10          # b_t = min(ema_decay, (1 + t) / (10 + t)): early on the average follows G closely


def load_data(val_fraction: float = 0.2, seed: int = 0) -> dict[str, torch.Tensor]:
    """MNIST-5k in [-1, 1] (the generator's tanh range), split per class: train_x/y, val_x/y."""
    images, labels = load_mnist5k()
    train_idx, val_idx = stratified_split(labels, val_fraction, seed)
    x = to_tanh_range(images)
    return {"train_x": x[train_idx], "train_y": labels[train_idx], "val_x": x[val_idx], "val_y": labels[val_idx]}


def eval_samples(gan: GAN, n: int, seed: int) -> torch.Tensor:
    """(n, 1, 28, 28) float32 samples on CPU from the evaluation noise (seed + 11): the same noise every time."""
    return gan.sample(n, torch.Generator().manual_seed(seed + 11)).float().cpu()


@torch.no_grad()
def recompute_batchnorm(generator: nn.Module, latent_dim: int, batches: int = 8, batch_size: int = 256,
                        seed: int = 0) -> None:
    """Replace every BatchNorm layer's running mean and variance in ``generator`` by their plain average
    over ``batches`` fresh noise batches in train mode (fixed ``seed``); leaves the generator in eval mode."""
    norms = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None                                   # cumulative average over the batches below
    device, gen = next(generator.parameters()).device, torch.Generator().manual_seed(seed)
    generator.train()
    for _ in range(batches):
        generator(sample_latent(batch_size, latent_dim, gen).to(device))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    generator.eval()


class GANTask(Task):
    """Alternating D/G steps on MNIST-5k; evaluation renders a fixed noise batch and, with a judge, scores samples."""

    def __init__(self, cfg: Config, train_images: torch.Tensor, judge: Judge | None = None, fixed_noise: int = 64):
        if train_images.ndim != 4 or tuple(train_images.shape[1:]) != (1, 28, 28):
            raise ValueError(f"train_images must be (N, 1, 28, 28), got {tuple(train_images.shape)}")
        lo, hi = float(train_images.min()), float(train_images.max())
        if lo < -1 or hi > 1 or lo >= 0:
            raise ValueError(f"train_images must be in [-1, 1] like the generator's tanh output, got range "
                             f"[{lo:.3g}, {hi:.3g}]; map [0, 1] images with to_tanh_range")
        self.recipe, self.data, self.latent_dim = cfg.gan, cfg.data, cfg.model.latent_dim
        self.seed, self.eval_samples = cfg.train.seed, cfg.study.eval_samples
        self.images, self.judge = train_images, judge
        self.fixed_z = sample_latent(fixed_noise, self.latent_dim, torch.Generator().manual_seed(self.seed + 7))
        self.snapshots: list[tuple[int, torch.Tensor]] = []   # (step, fixed-noise images on CPU)
        self.ema: list[torch.Tensor] | None = None              # G's averaged parameters (ema_decay > 0)
        self.ema_updates = 0

    def _update_ema(self, generator: nn.Module) -> None:
        """G_ema <- b G_ema + (1 - b) G, b = min(ema_decay, (1 + t) / (10 + t)) (see :class:`GANRecipe`)."""
        params = [p.detach() for p in generator.parameters()]
        if self.ema is None or self.ema[0].device != params[0].device:     # first step, or resumed from CPU
            self.ema = [p.clone() for p in params] if self.ema is None else [t.to(params[0].device) for t in self.ema]
        decay = min(self.recipe.ema_decay, (1 + self.ema_updates) / (_EMA_WARMUP + self.ema_updates))
        for avg, p in zip(self.ema, params):
            avg.lerp_(p, 1.0 - decay)
        self.ema_updates += 1

    def averaged(self, model: nn.Module) -> nn.Module:
        """A copy of the GAN whose generator has the averaged weights (the live model, without an average).

        Batch norm's running statistics belong to the weights that produced them, so the copy's are
        recomputed for the averaged weights (:func:`recompute_batchnorm`), not kept from the live G.
        """
        if self.ema is None:
            return model
        copied = copy.deepcopy(model)
        with torch.no_grad():
            for p, avg in zip(copied.generator.parameters(), self.ema):
                p.copy_(avg)
        recompute_batchnorm(copied.generator, self.latent_dim, seed=self.seed + 13)
        return copied

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        gen = step_generator(self.seed, step)                  # rows, then noise, from one generator
        idx = torch.randint(0, len(self.images), (self.data.batch_size,), generator=gen)
        return {"real": self.images[idx], "z": sample_latent(self.data.batch_size, self.latent_dim, gen)}

    def optimizers(self, model: nn.Module, cfg: TrainConfig, device: torch.device
                   ) -> dict[str, torch.optim.Optimizer]:
        """Adam for each player: G at ``cfg.lr``, D at the recipe's ``lr_d``, both with ``cfg.betas``."""
        return {"generator": torch.optim.Adam(model.generator.parameters(), lr=cfg.lr, betas=cfg.betas),
                "discriminator": torch.optim.Adam(model.discriminator.parameters(), lr=self.recipe.lr_d,
                                                  betas=cfg.betas)}

    def train_step(self, model: nn.Module, batch: Mapping[str, torch.Tensor], tools: StepTools) -> dict[str, float]:
        G, D, r = model.generator, model.discriminator, self.recipe
        opt_g, opt_d = tools.optimizers["generator"], tools.optimizers["discriminator"]
        # (1) update D: maximise log D(x) + log(1 - D(G(z))); G's images are detached.
        r1_in_fp32 = r.r1_gamma > 0 and tools.precision == "fp16"
        with tools.autocast():
            fake = G(batch["z"])                                                 # (B, 1, 28, 28)
            real = batch["real"].detach().requires_grad_(True) if r.r1_gamma > 0 else batch["real"]
            fake_logits = D(fake.detach())                                       # (B,)
            # R1's double backward through D gave NaN gradients in fp16 on every step (CPU autocast, smoke
            # recipe; the CUDA run diverged at step 145), so under fp16 D scores the reals in float32
            with torch.autocast(real.device.type, enabled=False) if r1_in_fp32 else contextlib.nullcontext():
                real_logits = D(real.float() if r1_in_fp32 else real)            # (B,)
            d_loss = discriminator_loss(real_logits, fake_logits, r.real_target)
        d_total, r1_value = d_loss, 0.0
        if r.r1_gamma > 0:                                  # R1: (gamma/2) E ||grad_x D(x)||^2 on reals
            grad, = torch.autograd.grad(real_logits.float().sum(), real, create_graph=True)
            penalty = grad.float().pow(2).flatten(1).sum(1).mean()
            d_total, r1_value = d_loss + 0.5 * r.r1_gamma * penalty, float(penalty.detach())
        opt_d.zero_grad(set_to_none=True)
        tools.backward(d_total)                             # scaled under fp16
        tools.sync(D.parameters())                          # average over DDP processes (no-op alone)
        d_norm = tools.clip(D.parameters(), opt_d)
        tools.step(opt_d, d_norm)
        # (2) update G through the freshly updated D.
        with tools.autocast():
            g_loss = generator_loss(D(fake), r.generator_loss)
        opt_g.zero_grad(set_to_none=True)
        tools.backward(g_loss)
        tools.sync(G.parameters())
        g_norm = tools.clip(G.parameters(), opt_g)
        tools.step(opt_g, g_norm)
        tools.update()                                      # one loss-scale update per training step (fp16)
        if r.ema_decay > 0:
            self._update_ema(G)
        d_value = float(d_loss.detach())
        return {"loss": d_value, "d_loss": d_value, "g_loss": float(g_loss.detach()),
                "d_real": float(torch.sigmoid(real_logits.detach().float()).mean()),
                "d_fake": float(torch.sigmoid(fake_logits.detach().float()).mean()),
                "d_grad_norm": d_norm, "g_grad_norm": g_norm, "r1": r1_value}

    def evaluate(self, model: nn.Module, step: int) -> dict[str, float]:
        images = model.generator(self.fixed_z.to(next(model.parameters()).device)).float().cpu()
        if not self.snapshots or self.snapshots[-1][0] != step:
            self.snapshots.append((step, images))
        if self.judge is None:
            return {}
        scores = self.judge.score(eval_samples(model, self.eval_samples, self.seed))
        if self.ema is not None:
            ema = self.judge.score(eval_samples(self.averaged(model), self.eval_samples, self.seed))
            scores.update({f"ema_{k}": v for k, v in ema.items()})
        return scores

    def signature(self) -> dict[str, Any]:
        return {"latent_dim": self.latent_dim, "data": self.data, "gan": self.recipe}

    def state_dict(self) -> dict[str, Any]:
        return {"snapshot_steps": [s for s, _ in self.snapshots], "snapshot_images": [x for _, x in self.snapshots],
                "ema": [t.detach().cpu() for t in self.ema] if self.ema is not None else None,
                "ema_updates": self.ema_updates}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.snapshots = list(zip(state["snapshot_steps"], state["snapshot_images"]))
        self.ema, self.ema_updates = state.get("ema"), int(state.get("ema_updates", 0))
