"""Chapter 06 (masked reconstruction on speech) settings: the ``class`` profile is ``Config()``.

``model`` is the frame encoder (:class:`course_lib.models.frames.FrameEncoderConfig`), ``data`` the
spoken-keyword corpus and its log-mel features, ``masking`` the pretext task, ``train`` the
pre-training. ``study`` holds the notebook's recognition budgets (fine-tuning, probes, label
draws, the mistake runs): no pre-trained weight depends on it, so it is not in the checkpoint's
fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ...audio import FeatureConfig
from ...models.frames import FrameEncoderConfig
from ...config_checks import check_config
from ...train import TrainConfig

__all__ = ["SpeechData", "MaskingConfig", "StudyConfig", "Config"]


@dataclass(frozen=True)
class SpeechData:
    """The corpus (every speaker says every keyword once, split by speaker) and what a step reads."""

    n_speakers: int = 200
    corpus_seed: int = 0
    features: FeatureConfig = FeatureConfig()
    stack: int = 3                     # consecutive 10 ms frames per model input step (Mockingjay's downsampling)
    batch_size: int = 64


@dataclass(frozen=True)
class MaskingConfig:
    """The pretext task: hide spans of frames, predict them; the loss scores hidden frames only."""

    fraction: float = 0.4              # of the steps hidden (about: spans may overlap)
    span: int = 4                      # consecutive steps per span (120 ms with 3 stacked 10 ms frames)
    loss: str = "l1"                   # "l1" or "mse"
    objective: str = "masked"          # "masked" | "all_frames" (mask, score all) | "autoencoder" (no mask)

    def __post_init__(self) -> None:
        if self.loss not in ("l1", "mse"):
            raise ValueError(f"masking.loss must be 'l1' or 'mse', got {self.loss!r}")
        if self.objective not in ("masked", "all_frames", "autoencoder"):
            raise ValueError(f"masking.objective must be 'masked', 'all_frames' or 'autoencoder', "
                             f"got {self.objective!r}")
        if not 0.0 < self.fraction < 1.0 or self.span < 1:
            raise ValueError(f"masking.fraction must be in (0, 1) and span >= 1, got {self.fraction}, {self.span}")


@dataclass(frozen=True)
class StudyConfig:
    """The notebook's recognition study (not the pre-trained checkpoint)."""

    label_budgets: tuple[int, ...] = (1, 5, 20, 0)     # labelled clips per word; 0 means every training clip
    draws: int = 3                                     # label draws per budget (mean and spread)
    ft_steps: int = 150                                # fine-tuning steps, pre-trained and from scratch alike
    ft_batch_size: int = 32
    ft_lr: float = 1e-3
    mistake_steps: int = 300                           # pre-training steps of each mistake run


@dataclass(frozen=True)
class Config:
    """Masked-frame pre-training on spoken keywords, and its study; profiles differ in sizes and steps."""

    profile: str = "class"
    model: FrameEncoderConfig = FrameEncoderConfig(n_features=120, max_frames=32)   # 3 x 40 bands, 98 // 3 steps
    data: SpeechData = SpeechData()
    masking: MaskingConfig = MaskingConfig()
    train: TrainConfig = TrainConfig(steps=1500, lr=2e-3, weight_decay=0.01, warmup_steps=100, eval_every=250)
    study: StudyConfig = StudyConfig()

    def __post_init__(self) -> None:
        check_config(self)                 # every field in its range, named by its dotted path

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"data.n_speakers": 30, "model.d_model": 64, "model.n_layers": 2, "data.batch_size": 32,
                  "train.steps": 150, "train.eval_every": 50, "train.warmup_steps": 20, "study.ft_steps": 120,
                  "study.draws": 2, "study.mistake_steps": 60},
        "class": {},
        "full": {"data.n_speakers": 200, "model.d_model": 192, "model.n_layers": 4, "model.n_heads": 6,
                 "data.batch_size": 128, "train.steps": 3000, "train.eval_every": 1000, "study.ft_steps": 300,
                 "study.draws": 3, "study.mistake_steps": 800},
    }
