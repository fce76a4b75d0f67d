"""Chapter 03 (GAN on MNIST-5k) settings: the ``class`` profile is ``Config()``.

The recipe: DCGAN with the non-saturating loss (:class:`GANRecipe`), Adam with betas (0.5, 0.999)
for both players (the generator's learning rate is ``train.lr``, the discriminator's ``gan.lr_d``)
and the R1 penalty on D (Mescheder, Geiger & Nowozin, 2018, "Which Training Methods for GANs do
actually Converge?", section 4.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ...config_checks import check_config
from ...train import TrainConfig

__all__ = ["GANModel", "GANData", "GANRecipe", "Study", "Config"]


@dataclass(frozen=True)
class GANModel:
    """Architecture (:class:`course_lib.models.gan.GANConfig`): ``width`` is the MLP hidden size or the
    DCGAN's channel count at 14x14."""

    kind: str = "dcgan"                # "dcgan" | "mlp"
    latent_dim: int = 64
    width: int = 32


@dataclass(frozen=True)
class GANData:
    """MNIST-5k, split per class; ``batch_size`` real images (and as many noise vectors) per step."""

    val_fraction: float = 0.2
    batch_size: int = 64


@dataclass(frozen=True)
class GANRecipe:
    """The game :class:`GANTask` plays: D's learning rate, the generator loss, label smoothing and R1.

    The generator's Adam takes ``train.lr`` and ``train.betas``; the discriminator's takes ``lr_d``
    and the same betas. ``real_target`` < 1 is one-sided label smoothing; ``r1_gamma`` > 0 adds
    (gamma / 2) E ||grad_x D(x)||^2 on real images to D's loss. ``ema_decay`` > 0 keeps an exponential
    moving average of G's weights, G_ema <- b G_ema + (1 - b) G with b = min(ema_decay, (1 + t) / (10 + t))
    at step t (Karras et al., 2018, "Progressive Growing of GANs", section A.1; Yazıcı et al., 2019,
    "The Unusual Effectiveness of Averaging in GAN Training"); it does not change training, only which
    weights are sampled, and the run reports the Fréchet distance of both.
    """

    lr_d: float = 1e-3
    generator_loss: str = "non_saturating"   # "non_saturating" | "saturating" | "fake_label"
    real_target: float = 1.0
    r1_gamma: float = 1.0                    # notebook 03 compares it with 10 (at lr 5e-4) over three seeds
    ema_decay: float = 0.999                 # 0: no average

    def __post_init__(self) -> None:
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1) (0 turns the average off), got {self.ema_decay}")


@dataclass(frozen=True)
class Study:
    """The judge (a digit classifier trained with ``fit``) and the notebook's side runs; not in the checkpoint hash."""

    classifier_steps: int = 400
    classifier_batch: int = 64
    classifier_lr: float = 2e-3
    eval_samples: int = 1000           # generated images scored per evaluation
    side_steps: int = 400              # the notebook's short comparison runs (sections 6-9)


@dataclass(frozen=True)
class Config:
    """DCGAN on MNIST-5k judged by a small classifier; profiles differ only in sizes and steps.

    ``train`` holds the budget, the generator's learning rate and both players' betas, the
    evaluation cadence, seed and clipping (none); the loop's cosine schedule decays both
    learning rates (:meth:`GANTask.optimizers`).
    """

    profile: str = "class"
    model: GANModel = GANModel()
    data: GANData = GANData()
    gan: GANRecipe = GANRecipe()
    train: TrainConfig = TrainConfig(steps=2500, lr=1e-3, betas=(0.5, 0.999), eval_every=250, grad_clip=None)
    study: Study = Study()

    def __post_init__(self) -> None:
        check_config(self)                 # every field in its range, named by its dotted path

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"model.width": 16, "train.steps": 400, "train.eval_every": 100, "study.eval_samples": 500,
                  "study.side_steps": 100, "study.classifier_steps": 150},
        "class": {},
        "full": {"model.width": 64, "data.batch_size": 128, "train.steps": 6000, "train.eval_every": 1000,
                 "study.side_steps": 1000, "study.classifier_steps": 1000},
    }
